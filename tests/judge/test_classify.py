"""Properties of the per-metric classification (hypothesis)."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from gates.judge.classify import HIGH, LOW, NODATA, PASS, classify
from gates.judge.stats import mann_whitney_hl

KW = dict(allowed_effect=0.05, confidence=0.99, min_samples=30)


def _lat(seed: int, n: int = 200, sigma: float = 0.25) -> np.ndarray:
    return np.random.default_rng(seed).lognormal(np.log(30.0), sigma, n)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(60, 400))
def test_identical_samples_pass(seed: int, n: int) -> None:
    x = _lat(seed, n)
    c = classify(x, x, direction="increase", **KW)  # type: ignore[arg-type]
    assert c.label == PASS and not c.bad
    assert c.relative == 0.0


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.15, 2.0), st.sampled_from(["increase", "decrease"]))
def test_constant_shift_beyond_allowed_is_flagged_in_its_direction(seed: int, shift: float, sign: str) -> None:
    b = _lat(seed)
    factor = (1 + shift) if sign == "increase" else 1 / (1 + shift)
    c = classify(b, b * factor, direction="increase", **KW)  # type: ignore[arg-type]
    assert c.label == (HIGH if sign == "increase" else LOW)
    assert c.bad == (sign == "increase")
    assert c.interval is not None and c.relative is not None
    assert c.interval[0] <= c.relative <= c.interval[1]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from([math.nan, math.inf, -math.inf]), max_size=50), st.integers(0, 29))
def test_nan_or_too_few_is_nodata_never_pass(junk: list[float], n: int) -> None:
    x = list(_lat(1, n)) + junk
    c = classify(x, x, direction="either", **KW)  # type: ignore[arg-type]
    assert c.label == NODATA and c.p_value is None
    assert classify([], None, direction="increase", **KW).label == NODATA  # type: ignore[arg-type]


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 10_000))
def test_verdict_is_monotone_in_the_shift(seed: int) -> None:
    b = _lat(seed, 300)
    noise = _lat(seed + 1, 300)
    order = {LOW: 0, PASS: 1, HIGH: 2}
    labels = [classify(b, noise * f, direction="increase", **KW).label for f in np.linspace(0.6, 1.6, 21)]  # type: ignore[arg-type]
    ranks = [order[x] for x in labels]
    assert ranks == sorted(ranks), labels
    assert labels[0] == LOW and labels[-1] == HIGH


def test_hl_shift_matches_a_known_log_ratio() -> None:
    b = _lat(3, 300)
    t = mann_whitney_hl(b, b * 1.2, log_scale=True)
    assert math.isclose(t.relative()[0], 0.2, rel_tol=1e-9) and t.p_value < 1e-6


def test_outlier_fences_keep_the_rank_test_at_its_level_on_skewed_latencies() -> None:
    """Per-arm fences made A/A arms non-exchangeable: lognormal sigma 2 rejected 4.3% at 1%."""
    rng = np.random.default_rng(28)
    trials, rejected = 3000, 0
    for _ in range(trials):
        b, c = rng.lognormal(0.0, 2.0, 100), rng.lognormal(0.0, 2.0, 100)
        r = classify(b, c, direction="either", allowed_effect=0.0, confidence=0.99, min_samples=30)
        rejected += r.label != PASS
    # nominal 1% (30 of 3000, sd 5.5): P(>= 60) is negligible; per-arm fences gave 128
    assert rejected < 60, rejected


def test_pooled_fences_drop_a_gross_outlier_of_either_arm() -> None:
    b, c = _lat(1), _lat(2)
    c[0] = 1e6
    r = classify(b, c, direction="increase", **KW)  # type: ignore[arg-type]
    assert r.removed >= 1 and r.n_candidate == c.size - 1


def test_a_zero_value_keeps_the_shift_relative() -> None:
    """A zero-token response (tokens/s 0) switched the metric to the absolute scale: -3% read -300%."""
    b = np.random.default_rng(3).lognormal(np.log(100.0), 0.05, 400)
    c = b * 0.97
    c[200] = 0.0  # mid-run: a 0 among the first requests reads as a warm-up and is cut (steady.py)
    r = classify(b, c, direction="decrease", remove_outliers=False, **KW)  # type: ignore[arg-type]
    assert r.relative is not None and -0.04 < r.relative < -0.02, r.reason
    assert r.label == PASS and not r.bad, r.reason
    assert "baseline median" in r.reason


def test_values_around_zero_without_a_relative_scale_are_no_data() -> None:
    b = np.concatenate([np.zeros(40), np.ones(20)])
    r = classify(b, b.copy(), direction="decrease", remove_outliers=False, **KW)  # type: ignore[arg-type]
    assert r.label == NODATA and not r.bad
