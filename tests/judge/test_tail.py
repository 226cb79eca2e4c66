"""The tail test: Maritz-Jarrett on hand-computed cases and planted tails."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import betainc

from gates.judge.tail import judge_quantile, maritz_jarrett, min_samples, quantile_test


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
