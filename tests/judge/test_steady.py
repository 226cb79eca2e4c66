"""MSER-5 warm-up detection, the moving-block bootstrap and the effective sample size."""

from __future__ import annotations

import numpy as np

from gates.judge.steady import block_length, block_resample, effective_size, mser5


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
