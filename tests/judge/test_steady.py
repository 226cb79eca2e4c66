"""MSER-5 warm-up detection, the moving-block bootstrap and the effective sample size."""

from __future__ import annotations

import numpy as np

from gates.judge.steady import (
    block_length,
    block_resample,
    combined_inflation,
    effective_size,
    mser5,
    rank_inflation,
    steady_window,
    variance_inflation,
)


def test_mser5_cuts_a_warm_up_and_keeps_a_stationary_series_whole() -> None:
    rng = np.random.default_rng(0)
    steady = rng.normal(100, 5, 600)
    warm = np.concatenate([np.linspace(400, 110, 60), steady])  # a cold start settling over 60 requests
    cut = mser5(warm)
    assert cut.settled and 40 <= cut.cut <= 90
    assert mser5(steady).cut <= 25
    trend = np.linspace(0, 500, 600) + rng.normal(0, 5, 600)  # never settles
    assert not mser5(trend).settled and mser5(trend).cut == 0


def test_effective_size_falls_with_autocorrelation() -> None:
    rng = np.random.default_rng(1)
    iid = rng.normal(0, 1, 2000)
    ar = np.empty(2000)
    ar[0] = 0.0
    for i in range(1, 2000):
        ar[i] = 0.9 * ar[i - 1] + rng.normal()
    assert effective_size(iid) > 1200
    # AR(1) with phi 0.9: n (1 - phi) / (1 + phi) ≈ 105
    assert 40 < effective_size(ar) < 250
    assert block_length(2000, effective_size(ar)) > block_length(2000, effective_size(iid))


def test_block_bootstrap_widens_the_interval_of_a_correlated_series() -> None:
    rng = np.random.default_rng(2)
    ar = np.empty(1500)
    ar[0] = 0.0
    for i in range(1, 1500):
        ar[i] = 0.95 * ar[i - 1] + rng.normal()
    blocks = np.percentile(block_resample(ar, 400, rng), 95, axis=1).std()
    iid = np.percentile(block_resample(ar, 400, rng, block=1), 95, axis=1).std()
    assert blocks > 2 * iid
    assert block_resample(ar, 3, rng).shape == (3, 1500)


def _mser5_loop(x: np.ndarray) -> int:
    """MSER-5 as first written (a loop over the cuts): the vectorised one must agree."""
    k = x.size // 5
    y = x[: k * 5].reshape(k, 5).mean(axis=1)
    stats = [float(((y[d:] - y[d:].mean()) ** 2).sum()) / (y[d:].size ** 2) for d in range(k - 1)]
    return int(np.argmin(stats))


def test_vectorised_mser5_agrees_with_the_loop() -> None:
    rng = np.random.default_rng(5)
    for n in (40, 333, 1000):
        x = np.concatenate([np.linspace(3, 1, n // 10), rng.normal(1, 0.3, n - n // 10)])
        d = _mser5_loop(x)
        assert mser5(x).cut == (d * 5 if d <= (n // 5) // 2 else 0)


def test_variance_inflation_is_one_on_independent_requests_and_tracks_an_ar1() -> None:
    rng = np.random.default_rng(6)
    iid = [variance_inflation(rng.normal(size=1000)) for _ in range(50)]
    assert sum(t == 1.0 for t in iid) >= 40  # independent: not inflated (full power kept)
    for phi in (0.5, 0.9):
        x = np.empty(4000)
        x[0] = 0.0
        for i in range(1, x.size):
            x[i] = phi * x[i - 1] + rng.normal()
        truth = (1 + phi) / (1 - phi)
        assert 0.7 * truth < variance_inflation(x) < 1.4 * truth


def test_a_slow_drift_is_seen_by_the_batch_means() -> None:
    rng = np.random.default_rng(7)
    drift = np.repeat(rng.normal(0, 0.5, 10), 200) + rng.normal(size=2000)  # 10 plateaus of 200
    assert variance_inflation(drift) > 10


def test_steady_window_cuts_both_arms_at_the_later_warm_up() -> None:
    rng = np.random.default_rng(8)
    b, c = rng.normal(10, 1, 800), rng.normal(10, 1, 800)
    c[:100] += np.linspace(20, 0, 100)
    b2, c2, cut = steady_window(b, c)
    assert 60 <= cut <= 140 and b2.size == c2.size == 800 - cut


def test_two_arms_inflation_weighs_each_arm_by_its_size() -> None:
    assert combined_inflation(1.0, 100, 1.0, 100) == 1.0
    assert combined_inflation(4.0, 100, 1.0, 100) == 2.5
    assert combined_inflation(4.0, 1000, 1.0, 10) == (1 / 10 + 4 / 1000) / (1 / 10 + 1 / 1000)
    b = np.arange(500.0) % 7  # a short cycle: positive correlation at lag 7 only, inflation ~1
    assert rank_inflation(np.arange(500.0), np.arange(500.0) + 0.5) > 50  # two trends: fully dependent
    assert rank_inflation(b, b[::-1].copy()) < 3


def test_a_chance_run_at_the_start_of_an_independent_series_is_not_cut() -> None:
    rng = np.random.default_rng(9)
    cuts = [steady_window(rng.normal(size=500), rng.normal(size=500))[2] for _ in range(100)]
    assert sum(c > 0 for c in cuts) <= 5  # MSER-5 alone cut something in ~40 of 100
