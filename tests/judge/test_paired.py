"""Paired statistics against hand-computed values and simulated coverage."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gates.judge.paired import (
    Interval,
    bootstrap_mean,
    bootstrap_ratio,
    detectable_effect,
    items_for_effect,
    mcnemar_exact,
    newcombe_paired,
    non_inferiority,
    paired_difference,
    two_sided,
    wilson,
)


@pytest.mark.parametrize(
    ("only_b", "only_c", "p"),
    [
        (1, 9, 2 * (1 + 10) / 1024),  # 2·P(X ≤ 1), X ~ Bin(10, ½)
        (9, 1, 2 * (1 + 10) / 1024),  # symmetric
        (0, 6, 2 / 64),
        (3, 3, 1.0),  # 2·P(X ≤ 3 | 6) = 2·42/64 > 1, capped
        (0, 0, 1.0),  # no discordant item: no evidence of a difference
        (2, 8, 2 * (1 + 10 + 45) / 1024),
    ],
)
def test_mcnemar_exact_matches_binomial_by_hand(only_b: int, only_c: int, p: float) -> None:
    assert mcnemar_exact(only_b, only_c) == pytest.approx(p, rel=1e-12)


def test_wilson_interval_by_hand() -> None:
    iv = wilson(8, 10, 0.95)  # textbook: 0.490 to 0.943
    assert iv.estimate == 0.8
    assert iv.low == pytest.approx(0.4902, abs=1e-4)
    assert iv.high == pytest.approx(0.9433, abs=1e-4)


def test_detectable_effect_and_items_by_hand() -> None:
    # power 0.80 aimed at as 0.85 (power_aimed): (z_.95 + z_.85) · sqrt(2·0.5·0.5/100) = 2.6812870 · 0.07071068
    assert detectable_effect(100, 0.5, 0.95, 0.8) == pytest.approx(0.189596, abs=1e-6)
    # ceil(2.681287² · 0.5 / 0.1²) = ceil(359.47)
    assert items_for_effect(0.1, 0.5, 0.95, 0.8) == 360
    # the two agree: at the planned size the detectable effect is at most the target
    n = items_for_effect(0.03, 0.8, 0.99, 0.8)
    assert detectable_effect(n, 0.8, 0.99, 0.8) <= 0.03 < detectable_effect(n - 1, 0.8, 0.99, 0.8)
    assert math.isnan(detectable_effect(0, 0.5, 0.95)) and math.isnan(detectable_effect(10, 1.0, 0.95))


def test_paired_counts_and_estimates() -> None:
    b = [True] * 8 + [False] * 2
    c = [True] * 6 + [False] * 2 + [True] + [False]
    pa = paired_difference(b, c, 0.95, resamples=500)
    assert (pa.n, pa.only_baseline, pa.only_candidate) == (10, 2, 1)
    assert pa.drop.estimate == pytest.approx(0.1)
    assert pa.baseline.estimate == 0.8 and pa.candidate.estimate == 0.7
    assert pa.recovery.estimate == pytest.approx(0.7 / 0.8)
    assert pa.p_value == pytest.approx(mcnemar_exact(2, 1))
    assert pa.drop.low <= 0.1 <= pa.drop.high


def test_no_discordant_item_still_gives_a_real_interval() -> None:
    """A bootstrap alone collapses to [0, 0]; the Newcombe bound keeps the width honest and it
    shrinks as items accumulate."""
    widths = []
    for n in (20, 200):
        pa = paired_difference([True] * (n // 2) + [False] * (n // 2), [True] * (n // 2) + [False] * (n // 2), 0.98)
        assert pa.drop.estimate == 0 and pa.drop.low < 0 < pa.drop.high
        widths.append(pa.drop.high - pa.drop.low)
    assert widths[1] < widths[0] / 2


def test_newcombe_contains_estimate_and_is_ordered() -> None:
    lo, hi = newcombe_paired(12, 9, 2, 21, 0.95)
    assert lo < 7 / 44 < hi and lo >= -1 and hi <= 1


def test_paired_interval_covers_the_true_difference() -> None:
    """Simulated paired data with a known drop: the 90% interval covers it about 90% of the time."""
    rng = np.random.default_rng(3)
    # P(both) .6, P(only baseline) .12, P(only candidate) .04, P(neither) .24: true drop .08
    probs = [0.6, 0.12, 0.04, 0.24]
    covered, runs = 0, 200
    for _ in range(runs):
        cell = rng.choice(4, size=150, p=probs)
        b = np.isin(cell, [0, 1])
        c = np.isin(cell, [0, 2])
        iv = paired_difference(list(b), list(c), 0.90, resamples=800, seed=int(rng.integers(1 << 30))).drop
        covered += iv.low <= 0.08 <= iv.high
    assert 0.85 <= covered / runs <= 0.99


def test_bootstrap_ratio_and_mean() -> None:
    iv = bootstrap_ratio([2.0, 4.0, 6.0], [1.0, 2.0, 3.0], 0.95)
    assert iv.estimate == 2.0 and iv.low == pytest.approx(2.0) and iv.high == pytest.approx(2.0)
    m = bootstrap_mean([1.0, 0.0, math.nan, 1.0, 1.0], 0.9, weights=[1, 1, 5, 1, 1])
    # never narrower than Student's t on 3 degrees of freedom: 0.75 ± 2.353 · 0.25
    assert m.estimate == 0.75 and m.low == pytest.approx(0.75 - 2.3534 * 0.25, abs=1e-3)
    assert m.high == pytest.approx(0.75 + 2.3534 * 0.25, abs=1e-3)
    assert bootstrap_mean([0.5], 0.9).high == math.inf  # one item: no interval
    assert math.isnan(bootstrap_mean([], 0.9).estimate)


def test_non_inferiority_rule_and_items_advice() -> None:
    assert non_inferiority(Interval(0.0, -0.02, 0.03), 0.05, 100, 0.2, 0.95).status == "pass"
    assert non_inferiority(Interval(0.2, 0.1, 0.3), 0.05, 100, 0.2, 0.95).status == "fail"
    d = non_inferiority(Interval(0.02, -0.03, 0.07), 0.05, 100, 0.3, 0.95)
    # n' = ceil((1.6449·0.3 / 0.03)²) = 271 in all: 171 more
    assert d.status == "inconclusive" and d.more_items == 171


def test_two_sided_level() -> None:
    assert two_sided(0.99) == pytest.approx(0.98) and two_sided(0.95) == pytest.approx(0.90)


def test_recovery_interval_is_not_pinned_by_one_discordant_item() -> None:
    """One item only the candidate got right: every bootstrap ratio is ≥ 1, yet 28 items cannot
    rule out that the candidate is worse; the interval reaches below 1 like the drop's does."""
    b = [True] * 23 + [False] * 5
    c = [True] * 24 + [False] * 4
    pa = paired_difference(b, c, 0.90)
    assert pa.recovery.estimate == pytest.approx(24 / 23)
    assert pa.recovery.low == pytest.approx(1 - pa.drop.high / (23 / 28)) and pa.recovery.low < 0.95


def test_newcombe_method_10_published_example_with_negative_cross_product() -> None:
    """Newcombe (1998), Table II, a=36, b=12, c=2, d=0 (ad - bc < 0): 0.0569 to 0.3404. The
    continuity correction was applied to a negative ad - bc too, giving 0.0645 to 0.3372."""
    lo, hi = newcombe_paired(36, 12, 2, 0, 0.95)
    assert lo == pytest.approx(0.0569, abs=5e-5) and hi == pytest.approx(0.3404, abs=5e-5)


def test_a_drop_at_the_margin_where_the_candidate_never_wins_passes_at_most_alpha() -> None:
    """Exact over every outcome of 60 items: baseline right on 80%, the candidate loses a right item
    with chance 0.1/0.8 and never wins one (true drop = margin 0.10). Newcombe + bootstrap PASSed
    5.3% of such suites at confidence 0.95."""
    from scipy.stats import multinomial

    n, margin, conf = 60, 0.10, 0.95
    passed = 0.0
    for only_b in range(n + 1):
        for both in range(n - only_b + 1):
            neither = n - both - only_b
            pr = float(multinomial.pmf([both, only_b, neither], n, [0.8 - margin, margin, 0.2]))
            if pr < 1e-9:
                continue
            base = [True] * (both + only_b) + [False] * neither
            cand = [True] * both + [False] * (only_b + neither)
            pa = paired_difference(base, cand, 1 - 2 * (1 - conf))
            passed += pr * (non_inferiority(pa.drop, margin, n, pa.item_sd, conf).status == "pass")
    assert passed <= 1 - conf, passed


def test_ratio_and_mean_intervals_cover_on_few_items() -> None:
    """The percentile bootstrap covered 82% at 10 documents and 82% at 10 prompts for 90%."""
    rng = np.random.default_rng(11)
    docs = prompts = 0
    trials = 600
    for _ in range(trials):
        t = rng.integers(20, 257, 10).astype(float)
        d = t * (0.02 + rng.standard_t(3, 10) * 0.03)  # per-document NLL difference, heavy-ish
        iv = bootstrap_ratio(list(d), list(t), 0.90, resamples=2000, seed=int(rng.integers(1 << 30)))
        docs += iv.low <= 0.02 <= iv.high
    for _ in range(trials):
        v = rng.beta(8, 1, 10)  # a top-1 agreement per prompt, skewed, mean 8/9
        m = bootstrap_mean(list(v), 0.90, resamples=2000, seed=int(rng.integers(1 << 30)))
        prompts += m.low <= 8 / 9 <= m.high
    # nominal 90% (sd 1.2%): before the fix 82% and 82%
    assert docs / trials >= 0.86 and prompts / trials >= 0.845, (docs, prompts)


def test_detectable_effect_has_its_stated_power_with_independent_arms() -> None:
    """At 100 items and baseline accuracy 0.9 the stated effect (2·p(1-p) variance) was detected
    (the gate's lower bound above 0) 62% of the time, not 80%."""
    rng = np.random.default_rng(7)
    n, p, conf = 100, 0.9, 0.95
    effect = detectable_effect(n, p, conf, 0.8)
    hits, trials = 0, 400
    for _ in range(trials):
        b, c = rng.random(n) < p, rng.random(n) < p - effect
        hits += paired_difference(list(b), list(c), two_sided(conf), resamples=1000).drop.low > 0
    # 77% measured after the fix (sd 2.1%); 62% before
    assert hits / trials >= 0.72, hits


@pytest.mark.parametrize(("n", "p", "conf"), [(30, 0.8, 0.95), (30, 0.7, 0.99)])
def test_detectable_effect_keeps_its_power_with_the_gates_two_bounds(n: int, p: float, conf: float) -> None:
    """The gate's lower end is the lower of the bootstrap's and Newcombe's: the drop must clear
    both, which a power computed for Newcombe's alone overstated (measured 0.73-0.75 here for the
    stated 0.80)."""
    rng = np.random.default_rng(11)
    effect = detectable_effect(n, p, conf, 0.8)
    hits, trials = 0, 1500
    for _ in range(trials):
        b, c = rng.random(n) < p, rng.random(n) < p - effect
        hits += paired_difference(list(b), list(c), two_sided(conf), resamples=1000).drop.low > 0
    assert hits / trials >= 0.795, hits / trials  # sd 1.0% at 1500 trials; 0.83-0.84 after the fix
