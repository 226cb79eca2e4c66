"""The search's stopping rule: who stops when, and the error rates it states."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gates.judge.sequential import boundaries
from gates.search.halving import Fate, Observation, Quality, Rule, search

RULE = Rule(rungs=(0.25, 0.5, 1.0))


def fixed(*obs: Observation):  # type: ignore[no-untyped-def]
    """A measure giving each candidate the same observation at every rung, counting calls."""
    calls: list[tuple[int, int]] = []

    def measure(i: int, r: int) -> Observation:
        calls.append((i, r))
        return obs[i]

    return measure, calls


def o(cost: float, drop: float, cost_se: float = 0.01, drop_se: float = 0.0, gates_pass: bool = True) -> Observation:
    return Observation(cost, cost_se, drop, drop_se, margin=0.05, gates_pass=gates_pass)


def test_inferior_and_failed_candidates_stop_at_the_first_rung_and_the_cheapest_good_one_wins() -> None:
    measure, calls = fixed(o(-0.5, 0.20), o(-0.4, 0.01, gates_pass=False), o(-0.2, 0.01), o(0.0, 0.0))
    out = search(4, RULE, measure)
    fates = [t.fate for t in out.tracks]
    assert fates == [Fate.INFERIOR, Fate.GATES_FAILED, Fate.CHEAPEST, Fate.DEARER]
    assert [t.quality for t in out.tracks][:3] == [Quality.FAIL, Quality.FAIL, Quality.PASS]
    assert out.recommended == 2
    assert set(calls) == {(0, 0), (1, 0), (2, 0), (3, 0)}  # all settled on the first quarter
    assert out.time_used == pytest.approx(1.0) and out.time_full == 4.0


def test_a_futile_loss_stops_but_one_within_half_the_margin_does_not() -> None:
    measure, _ = fixed(o(-0.5, 0.04, drop_se=0.005), o(-0.3, 0.02))
    out = search(2, RULE, measure)
    assert out.tracks[0].fate == Fate.FUTILE and out.tracks[0].quality == Quality.FAIL
    assert out.tracks[1].fate == Fate.CHEAPEST and out.recommended == 1


def test_a_loss_shown_within_the_margin_is_not_futile_however_close_to_it() -> None:
    """Exact greedy drift (SmolLM2 int8: top-1 0.959, a loss of 0.041 against a margin of 0.05):
    beyond half the margin, but already shown within it: non-inferior, as its gate says."""
    measure, _ = fixed(o(-0.5, 0.041), o(-0.3, 0.02))
    out = search(2, RULE, measure)
    assert out.tracks[0].quality == Quality.PASS and out.tracks[0].fate == Fate.CHEAPEST and out.recommended == 0


def test_an_unsettled_cost_runs_to_the_full_load_and_the_lower_estimate_is_recommended() -> None:
    measure, calls = fixed(o(-0.30, 0.0, cost_se=0.2), o(-0.31, 0.0, cost_se=0.2))
    out = search(2, RULE, measure)
    assert {(i, r) for i, r in calls} == {(i, r) for i in (0, 1) for r in (0, 1, 2)}
    assert [t.fate for t in out.tracks] == [Fate.NON_INFERIOR, Fate.NON_INFERIOR]
    assert out.recommended == 1 and out.time_used == 2.0


def test_noisy_quality_near_the_margin_is_not_shown_non_inferior() -> None:
    measure, _ = fixed(o(-0.5, 0.048, drop_se=0.01), o(0.0, 0.0))
    out = search(2, Rule(rungs=RULE.rungs, futility=1.0), measure)  # no futility short of the margin
    assert out.tracks[0].fate == Fate.UNSETTLED and out.tracks[0].quality == Quality.FAIL
    assert out.recommended == 1
    # with the default futility (half the margin) the same candidate stops early instead
    assert search(2, RULE, measure).tracks[0].fate == Fate.FUTILE


def test_the_budget_leaves_later_candidates_unmeasured() -> None:
    measure, calls = fixed(o(-0.3, 0.0, cost_se=0.5), o(-0.2, 0.0, cost_se=0.5), o(-0.1, 0.0))
    out = search(3, RULE, measure, out_of_time=lambda: len(calls) >= 2)
    assert [t.fate for t in out.tracks][2] == Fate.UNMEASURED
    assert out.recommended == 0  # among what was measured: non-inferior, lowest estimate


def test_the_bounds_are_the_group_sequential_ones_split_over_the_candidates() -> None:
    rungs = (0.25, 0.5, 1.0)
    assert RULE.quality_bound(4, 2) == pytest.approx(boundaries(rungs, rungs, 0.05 / 4, "pocock")[2])
    assert RULE.cost_bound(4, 0) == pytest.approx(boundaries((0.25,), (0.25,), 0.05 / 12, "pocock")[0])


def _at_margin_trial(rng: np.random.Generator, rule: Rule) -> bool:
    """One candidate whose true loss is exactly the margin, measured with noise: recommended?"""
    inc = rng.normal(0, 1, len(rule.rungs)) * np.sqrt(np.diff((0.0, *rule.rungs)))
    s = np.cumsum(inc)

    def measure(i: int, r: int) -> Observation:
        tau = rule.rungs[r]
        return Observation(-0.5, 0.01, 0.05 + 0.02 * s[r] / tau, 0.02 / math.sqrt(tau), 0.05)

    return search(1, rule, measure).recommended is not None


@pytest.mark.parametrize("spending", ["pocock", "obrien_fleming"])
def test_a_candidate_at_the_margin_is_recommended_at_most_false_recommend_of_the_time(spending: str) -> None:
    rule = Rule(rungs=(0.125, 0.25, 0.5, 1.0), false_recommend=0.05, spending=spending)
    rng = np.random.default_rng(7)
    n = 4000
    rate = sum(_at_margin_trial(rng, rule) for _ in range(n)) / n
    assert 0.035 < rate < 0.06  # 0.05 spent over four looks; the 99% binomial band of 4000 trials is ±0.009
