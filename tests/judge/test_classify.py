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
