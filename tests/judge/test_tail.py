"""The tail test: Maritz-Jarrett on hand-computed cases and planted tails."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import betainc

from gates.judge.adaptive import mw_z
from gates.judge.tail import (
    judge_quantile,
    maritz_jarrett,
    min_samples,
    quantile_test,
    upper_tail_scores,
    upper_tail_z,
)


def test_maritz_jarrett_hand_computed() -> None:
    x = np.arange(1.0, 11.0)  # n=10, q=0.5 -> m = floor(5.5) = 5, weights from Beta(4, 5)
    est, se = maritz_jarrett(x, 0.5)
    w = [betainc(4, 5, i / 10) - betainc(4, 5, (i - 1) / 10) for i in range(1, 11)]
    c1 = sum(wi * xi for wi, xi in zip(w, x, strict=True))
    c2 = sum(wi * xi * xi for wi, xi in zip(w, x, strict=True))
    assert est == 5.0 and se == pytest.approx(math.sqrt(c2 - c1 * c1))


def test_too_few_samples_for_the_quantile() -> None:
    assert min_samples(0.95) == 40 and min_samples(0.99) == 200
    x = np.linspace(10, 20, 100)
    assert quantile_test(x, x, 0.99) is None and quantile_test(x, x, 0.95) is not None


def _spread(rng: np.random.Generator, n: int, k: float) -> np.ndarray:
    x = rng.lognormal(np.log(30), 0.25, n)
    m = 30.0
    x[x > m] = m * (x[x > m] / m) ** k
    return x


def test_longer_tail_with_the_same_median_fails_and_identical_arms_do_not() -> None:
    rng = np.random.default_rng(3)
    b, c = _spread(rng, 600, 1.0), _spread(rng, 600, 1.6)
    assert abs(np.median(c) / np.median(b) - 1) < 0.05
    t = judge_quantile(b, c, 0.95, 1.10, 0.99, 0.0025)
    assert t.status == "fail" and t.observed is not None and t.observed > 1.2
    same = judge_quantile(b, b.copy(), 0.95, 1.10, 0.99, 0.0025)
    assert same.status == "pass" and same.observed == 1.0


def test_a_a_false_fail_rate_stays_below_alpha() -> None:
    rng = np.random.default_rng(11)
    fails = sum(
        judge_quantile(_spread(rng, 300, 1.0), _spread(rng, 300, 1.0), 0.95, 1.10, 0.99, 0.01).status == "fail"
        for _ in range(400)
    )
    assert fails / 400 <= 0.02


def test_upper_tail_scores_hand_computed() -> None:
    # n=4: u = 0.2, 0.4, 0.6, 0.8 -> Φ⁻¹ = -0.8416, -0.2533, 0.2533, 0.8416; lower half scores 0
    assert upper_tail_scores(4) == pytest.approx([0.0, 0.0, 0.2533471**2, 0.8416212**2], rel=1e-6)


def test_upper_tail_z_hand_computed() -> None:
    # pooled sorted: b1 < b2 < c1 < c2 (N=4): candidate holds scores a3, a4; permutation moments
    a = upper_tail_scores(4)
    mean = a.mean()
    var = 2 * 2 / (4 * 3) * float(np.sum((a - mean) ** 2))
    z = upper_tail_z(np.array([1.0, 2.0]), np.array([3.0, 4.0]))
    assert z == pytest.approx((a[2] + a[3] - 2 * mean) / math.sqrt(var))
    assert upper_tail_z(np.array([3.0, 4.0]), np.array([1.0, 2.0])) < 0


def test_upper_tail_z_ties_share_their_mean_score() -> None:
    # c = [2, 2] ties with b's 2 at ranks 2..4 of pooled [1, 2, 2, 2]: each gets mean(a2, a3, a4)
    a = upper_tail_scores(4)
    tied = (a[1] + a[2] + a[3]) / 3
    scores = np.array([tied, tied, a[0], tied])  # candidate first, as pooled
    var = 2 * 2 / (4 * 3) * float(np.sum((scores - scores.mean()) ** 2))
    z = upper_tail_z(np.array([1.0, 2.0]), np.array([2.0, 2.0]))
    assert z == pytest.approx((2 * tied - 2 * scores.mean()) / math.sqrt(var))
    assert upper_tail_z(np.array([5.0, 5.0]), np.array([5.0, 5.0])) == 0.0  # no variance: no evidence


def test_upper_tail_z_sees_a_longer_tail_that_the_median_does_not() -> None:
    rng = np.random.default_rng(5)
    b, c = _spread(rng, 500, 1.0), _spread(rng, 500, 1.4)
    t = quantile_test(b, c, 0.95)
    assert t is not None and t.z > 3.0


def test_upper_tail_z_is_standard_normal_under_the_null() -> None:
    rng = np.random.default_rng(9)
    zs = np.array([upper_tail_z(_spread(rng, 200, 1.0), _spread(rng, 200, 1.0)) for _ in range(400)])
    assert abs(zs.mean()) < 0.15 and 0.85 < zs.std() < 1.15


def test_identical_constant_arms_have_no_tail_evidence() -> None:
    """Every value tied: z was +36 (a rounding residue for a zero variance) and FAILed a limit < 1."""
    x = np.full(100, 20.0)
    assert upper_tail_z(x, x) == 0.0
    assert mw_z(x, x) == 0.0
    t = judge_quantile(x, x, 0.95, 0.9, 0.99, 0.005)
    assert t.status != "fail", t.reason
