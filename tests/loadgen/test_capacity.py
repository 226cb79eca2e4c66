"""Capacity at the SLO from hand-computed step tables."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gates.loadgen.capacity import (
    FAIL,
    PASS,
    UNCERTAIN_FAIL,
    UNCERTAIN_PASS,
    UNUSABLE,
    SweepStep,
    capacity,
    check_step,
    p95_interval,
)
from gates.loadgen.stats import ArmLoad


def arm(latencies: list[float], errors: int = 0, tokens_per_s: float = 100.0, window: float = 10.0) -> ArmLoad:
    n = len(latencies) + errors
    return ArmLoad(
        requests=n,
        errors=errors,
        window_s=window,
        latency_ms={"p50": math.nan, "p95": math.nan, "p99": math.nan, "mean": math.nan},
        ttft_ms={},
        itl_ms={},
        rps=len(latencies) / window,
        output_tokens_per_s=tokens_per_s,
        goodput_rps=None,
        error_rate=errors / n if n else math.nan,
        samples_ms=tuple(latencies),
        tokens_per_s_samples=(),
        ttft_samples_ms=(),
        first_errors=(),
    )


SLO = {"latency_ms": 1000.0}
# 120 samples: an exact two-sided 99% interval of the p95 has a finite upper end from 104 on
FAST = [100.0 + i for i in range(120)]  # p95 ≈ 214: certainly within 1000
SLOW = [5000.0 + i for i in range(40)]  # certainly above
# 40 samples with the top 3 at 2000: the p95 estimate is above 1000 but resamples straddle it
EDGE = [900.0] * 37 + [2000.0] * 3


def test_step_outcomes() -> None:
    assert check_step(arm(FAST), SLO, 0.01, 0.99).status == PASS
    assert check_step(arm(SLOW), SLO, 0.01, 0.99).status == FAIL
    assert check_step(arm(EDGE), SLO, 0.01, 0.99).status == UNCERTAIN_FAIL
    assert check_step(arm([900.0] * 38 + [2000.0] * 2), SLO, 0.01, 0.99).status == UNCERTAIN_PASS
    assert check_step(arm(FAST, errors=5), SLO, 0.01, 0.99).status == FAIL  # errors break the SLO
    assert check_step(arm([], errors=3), SLO, 0.01, 0.99).status == FAIL
    assert check_step(arm(FAST), SLO, 0.01, 0.99, "client saturated").status == UNUSABLE
    assert check_step(arm(FAST), {"ttft_ms": 50.0}, 0.01, 0.99).status == FAIL  # TTFT not measured: fails


def steps(table: list[tuple[float, list[float], list[float]]]) -> list[SweepStep]:
    return [SweepStep(v, arm(b, tokens_per_s=10 * v), arm(c, tokens_per_s=20 * v), None) for v, b, c in table]


def test_capacity_bracket_gain_and_cost() -> None:
    table = [(1.0, FAST, FAST), (2.0, EDGE, FAST), (4.0, SLOW, [900.0] * 38 + [2000.0] * 2), (8.0, SLOW, SLOW)]
    cap = capacity("rate", steps(table), SLO, 0.01, 0.99, usd_per_hour=3.6)
    b, c = cap.baseline, cap.candidate
    # baseline: 1 certain pass, 2 uncertain fail, 4 certain fail -> capacity 1, bracket [1, 4)
    assert (b.max_rate, b.low, b.high) == (1.0, 1.0, 4.0)
    # candidate: 1, 2 certain pass, 4 uncertain pass, 8 certain fail -> capacity 4, bracket [2, 8)
    assert (c.max_rate, c.low, c.high) == (4.0, 2.0, 8.0)
    # cost at capacity: $3.6/h = $0.001/s over tokens/s at that step, per 1M tokens
    assert b.usd_per_1m_tokens == pytest.approx(0.001 / 10 * 1e6)
    assert c.usd_per_1m_tokens == pytest.approx(0.001 / 80 * 1e6)
    assert cap.gain() == (4.0, 2.0 / 4.0, 8.0 / 1.0)
    js = cap.to_json()
    assert js["baseline"]["max_rate"] == 1.0 and js["gain"] == 4.0 and js["gain_interval"] == [0.5, 8.0]
    assert [s["candidate"]["status"] for s in js["steps"]] == ["pass", "pass", "pass?", "fail"]


def test_no_step_meets_the_slo_and_unbounded_capacity() -> None:
    table = [(1.0, SLOW, FAST), (2.0, SLOW, FAST)]
    cap = capacity("concurrency", steps(table), SLO, 0.01, 0.99, None)
    assert (cap.baseline.max_rate, cap.baseline.low, cap.baseline.high) == (None, None, 1.0)
    assert (cap.candidate.max_rate, cap.candidate.high) == (2.0, None)  # may lie beyond the sweep
    assert cap.candidate.usd_per_1m_tokens is None  # no price configured
    assert cap.gain() == (None, None, None)


def test_a_failure_ends_the_run_even_if_a_later_step_passes() -> None:
    cap = capacity("rate", steps([(1.0, FAST, FAST), (2.0, SLOW, FAST), (3.0, FAST, FAST)]), SLO, 0.01, 0.99, None)
    assert cap.baseline.max_rate == 1.0 and cap.baseline.high == 2.0


def test_p95_interval_keeps_its_coverage_on_few_requests() -> None:
    """A step's p95 is a *certain* pass when the interval's upper end is within the limit, so the
    upper end may fall below the true p95 at most (1 - confidence)/2 of the time. The percentile
    bootstrap missed it 20-30% of the time at 30 requests and 15% at 60 (it cannot exceed the
    sample maximum, which is below the true p95 with chance 0.95^n), for a nominal 2.5%."""
    rng = np.random.default_rng(5)
    true_p95 = float(np.exp(1.5 * 1.6448536269514722))  # lognormal(0, 1.5)
    trials = 400
    for n in (30, 60, 150):
        below = above = 0
        for _ in range(trials):
            est, low, high = p95_interval(list(rng.lognormal(0.0, 1.5, n)), 0.95, seed=int(rng.integers(1 << 30)))
            below += high < true_p95
            above += low > true_p95
            assert low <= est <= high
        # nominal 2.5% each side (sd 0.8% at 400 trials)
        assert below / trials <= 0.05 and above / trials <= 0.05, (n, below, above)
    # below the size where an upper end exists (0.95^n > (1 - confidence)/2) it is unbounded
    assert p95_interval([1.0] * 71, 0.95)[2] == float("inf")
    assert p95_interval([1.0] * 72, 0.95)[2] == 1.0
