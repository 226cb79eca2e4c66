"""Paired statistics of per-item pass rates over sampled repeats, checked against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gates.judge.paired import detectable_effect, items_for_effect, mcnemar_exact, newcombe_paired, paired_difference
from gates.judge.sampled import paired_rates, score_variance, sign_flip_test


def test_sign_flip_by_hand() -> None:
    # sums over the 8 sign patterns of (.4, .2, .2): ±.8, ±.4, ±.4, ±0 -> 6 of 8 reach |.4|
    assert sign_flip_test([0.4, 0.2, -0.2]) == pytest.approx(0.75)
    # (.2, .2, .2): only all-plus and all-minus reach |.6|
    assert sign_flip_test([0.2, 0.2, 0.2]) == pytest.approx(0.25)
    # zero differences flip to themselves: one non-zero item, both of its signs reach |.5|
    assert sign_flip_test([0.5, 0.0, 0.0]) == 1.0
    assert sign_flip_test([0.0, 0.0]) == 1.0 and sign_flip_test([]) == 1.0


@pytest.mark.parametrize(("only_b", "only_c"), [(5, 1), (3, 3), (7, 0), (2, 9), (0, 1)])
def test_sign_flip_on_zero_one_outcomes_is_mcnemar(only_b: int, only_c: int) -> None:
    d = [1.0] * only_b + [-1.0] * only_c + [0.0] * 5
    assert sign_flip_test(d) == pytest.approx(mcnemar_exact(only_b, only_c))


def test_sign_flip_monte_carlo_beyond_exact_enumeration() -> None:
    # 20 items all one way: exact p = 2 / 2**20; the seeded Monte Carlo never says 0
    p = sign_flip_test([0.2] * 20)
    assert 0 < p <= 2 / 20_001
    assert 0 < sign_flip_test([0.2] * 20, seed=1) <= 2 / 20_001
    balanced = sign_flip_test([0.2, -0.2] * 10)
    assert balanced == 1.0  # observed sum 0: every pattern reaches it
    assert sign_flip_test([0.3] * 12 + [-0.1] * 8) == sign_flip_test([0.3] * 12 + [-0.1] * 8)  # seeded


def test_single_repeats_are_exactly_the_zero_one_analysis() -> None:
    rng = np.random.default_rng(5)
    b = [bool(x) for x in rng.random(60) < 0.7]
    c = [bool(x and y) for x, y in zip(b, rng.random(60) < 0.9, strict=True)]
    assert paired_rates([[x] for x in b], [[x] for x in c], 0.98) == paired_difference(b, c, 0.98)


def test_pass_rates_by_hand() -> None:
    base = [[True, True, False, False], [True, True, True, True]]
    cand = [[True, False, False, False], [True, True, True, True]]
    pa = paired_rates(base, cand, 0.90)
    assert pa.n == 2 and pa.repeats == 4
    assert pa.baseline.estimate == pytest.approx(0.75) and pa.candidate.estimate == pytest.approx(0.625)
    assert pa.drop.estimate == pytest.approx(0.125)
    assert (pa.only_baseline, pa.only_candidate) == (1, 0)  # draws, repeat r against repeat r
    assert pa.item_sd == pytest.approx(math.sqrt(0.25**2 / 2))  # differences (.25, 0)
    assert pa.p_value == 1.0  # one non-zero difference: both signs reach it
    # the interval is never narrower than Newcombe's on the table of the 8 draws: both 1 + 4,
    # only baseline 1, only candidate 0, neither 2
    lo, hi = newcombe_paired(5, 1, 0, 2, 0.90)
    assert pa.drop.low <= lo and pa.drop.high >= hi
    assert pa.drop.low <= pa.drop.estimate <= pa.drop.high
    assert 0 <= pa.baseline.low <= 0.75 <= pa.baseline.high <= 1


def test_mismatched_items_or_repeats_are_refused() -> None:
    with pytest.raises(ValueError, match="differ in number"):
        paired_rates([[True]], [[True], [False]], 0.9)
    with pytest.raises(ValueError, match="item 0: 2 baseline repeats, 3 candidate repeats"):
        paired_rates([[True, True]], [[True, True, False]], 0.9)


def test_score_variance_by_hand_and_its_bounds() -> None:
    # mean .6; deviations (.4, 0, -.4, 0): sample variance .32 / 3
    assert score_variance([1.0, 0.6, 0.2, 0.6], [5] * 4) == pytest.approx(0.32 / 3)
    # every item equally hard: the variance of a mean of 5 draws, .6·.4 / 5
    assert score_variance([0.6] * 4, [5] * 4) == pytest.approx(0.048)
    # never above p(1-p), the variance of 0/1 outcomes
    assert score_variance([1.0, 0.0, 1.0, 0.0], [5] * 4) == pytest.approx(0.25)
    assert math.isnan(score_variance([], []))


def test_detectable_effect_accounts_for_the_item_variance() -> None:
    z = 2.3263478740408408 + 0.8416212335729143  # one-sided 99% and 80% power
    normal = z * math.sqrt(2 * 0.048 / 50)  # both arms at the baseline's variance: a floor
    assert normal <= detectable_effect(50, 0.6, 0.99, 0.8, variance=0.048) < 1.1 * normal
    # 0/1 items (no variance given) also reach Newcombe's interval, a little wider
    assert detectable_effect(50, 0.6, 0.99, 0.8) == pytest.approx(
        detectable_effect(50, 0.6, 0.99, 0.8, variance=0.24), rel=0.01
    )
    n = items_for_effect(0.05, 0.6, 0.99, 0.8, variance=0.048)
    assert n >= math.ceil(z * z * 2 * 0.048 / 0.05**2)
    assert detectable_effect(n, 0.6, 0.99, 0.8, 0.048) <= 0.05 < detectable_effect(n - 1, 0.6, 0.99, 0.8, 0.048)
    # repeats make each item more informative: fewer items for the same effect
    assert items_for_effect(0.05, 0.6, 0.99, 0.8, variance=0.048) < items_for_effect(0.05, 0.6, 0.99, 0.8)


def test_identical_draws_on_many_items_certify_a_small_drop() -> None:
    """A/A with common random numbers: every draw agrees; the upper end is the exact bound of no
    discordant draw among 1000 (Clopper-Pearson at a quarter of 1 - confidence), above Newcombe's."""
    rng = np.random.default_rng(2)
    outcomes = [[bool(x) for x in rng.random(5) < p] for p in rng.uniform(0.2, 1.0, 200)]
    pa = paired_rates(outcomes, outcomes, 0.98)
    assert pa.drop.estimate == 0 and pa.p_value == 1.0
    both = sum(sum(o) for o in outcomes)
    lo, hi = newcombe_paired(both, 0, 0, 1000 - both, 0.98)
    exact = 1 - 0.005 ** (1 / 1000)
    assert pa.drop.low == pytest.approx(lo) and pa.drop.high == pytest.approx(exact)
    assert lo < 0 < hi < pa.drop.high < 0.01
    # the same items answered once each certify less: 200 agreeing outcomes instead of 1000
    once = paired_rates([o[:1] for o in outcomes], [o[:1] for o in outcomes], 0.98)
    assert once.drop.high > 2 * pa.drop.high


def test_pass_rate_interval_covers_the_true_drop() -> None:
    """Items of varied difficulty, 5 draws each, the candidate losing each pass with prob. .15:
    the 90% interval of the drop covers the true drop about 90% of the time (or more: the
    Newcombe floor is conservative)."""
    rng = np.random.default_rng(11)
    covered, runs = 0, 150
    for _ in range(runs):
        p = rng.uniform(0.1, 1.0, 80)
        u = rng.random((80, 5))  # common random numbers: one uniform per draw, both arms
        keep = rng.random((80, 5)) >= 0.15
        b = u < p[:, None]
        c = b & keep
        true_drop = float(np.mean(p)) * 0.15
        iv = paired_rates(b.tolist(), c.tolist(), 0.90, resamples=800, seed=int(rng.integers(1 << 30))).drop
        covered += iv.low <= true_drop <= iv.high
    assert 0.85 <= covered / runs <= 1.0


def test_upper_bound_covers_a_drop_at_the_margin_on_few_items() -> None:
    """8 items of 5 draws, item difficulty U(0.2, 1), the candidate loses each passing draw with
    chance 0.15 and never wins one (true drop 0.09): the upper bound fell below it 11.7% of the
    time at one-sided 95%."""
    rng = np.random.default_rng(5)
    trials, missed, truth = 600, 0, 0.15 * 0.6
    for _ in range(trials):
        p = rng.uniform(0.2, 1.0, 8)
        base = rng.random((8, 5)) < p[:, None]
        cand = base & (rng.random((8, 5)) >= 0.15)
        pa = paired_rates(base.tolist(), cand.tolist(), 0.90, resamples=1000)
        missed += pa.drop.high < truth
    # nominal 5% (30 of 600, sd 5.3): P(>= 45) < 1%; before the fix ~65
    assert missed < 45, missed
