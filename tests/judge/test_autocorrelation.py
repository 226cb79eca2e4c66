"""The latency gates on correlated requests: intervals on the effective sample, the warm-up cut.

Each arm's log latency follows an AR(1) (lag-1 correlation 0.9: a mean of 1,000 such requests
varies like one of ~50 independent ones), the two arms drawn apart, no change between them.
The intervals of the independent-request formulas are ~4× too narrow there; these tests fail on
them (measured on the independent-request gates: the shift interval covered 0 in 11 of 40 runs,
the p95 ratio's 20 of 40, the verdict FAILed 3 of 30 A/A runs and FAILed the one-arm warm-up)
and pass on the corrected ones.
"""

from __future__ import annotations

import math

import numpy as np

from gates.config.schema import GatesSection
from gates.judge.classify import classify
from gates.judge.policy import FAIL, Evidence, judge
from gates.judge.tail import quantile_test


def ar1_latencies(rng: np.random.Generator, n: int, phi: float = 0.9, sigma: float = 0.25) -> np.ndarray:
    s = np.empty(n)
    s[0] = rng.normal(0.0, sigma)
    e = rng.normal(0.0, sigma * math.sqrt(1 - phi * phi), n)
    for i in range(1, n):
        s[i] = phi * s[i - 1] + e[i]
    return np.asarray(25.0 * np.exp(s))


def evidence(b: np.ndarray, c: np.ndarray) -> Evidence:
    return Evidence(
        series={"latency_ms": (tuple(b), tuple(c)), "output_tokens_per_s": (tuple(16e3 / b), tuple(16e3 / c))},
        baseline_error_rate=0.0,
        candidate_error_rate=0.0,
        candidate_requests=len(c),
        exact_match_rate=1.0,
        top1_agreement=1.0,
        mean_kl=0.0,
        golden_prompts=18,
        latency_simulated=False,
    )


def test_the_shift_interval_covers_no_change_on_correlated_requests() -> None:
    rng = np.random.default_rng(30)
    covered = 0
    for _ in range(40):
        cls = classify(
            ar1_latencies(rng, 1000),
            ar1_latencies(rng, 1000),
            direction="increase",
            allowed_effect=0.05,
            confidence=0.95,
            min_samples=30,
        )
        assert cls.interval is not None
        covered += cls.interval[0] <= 0.0 <= cls.interval[1]
    assert covered >= 34  # nominal 95%: 38 of 40; the independent-request interval: 11


def test_independent_requests_keep_the_independent_interval() -> None:
    rng = np.random.default_rng(31)
    b, c = rng.lognormal(3.2, 0.25, 1000), rng.lognormal(3.2, 0.25, 1000)
    cls = classify(b, c, direction="increase", allowed_effect=0.05, confidence=0.95, min_samples=30)
    assert cls.interval is not None and "correlated" not in cls.reason
    assert cls.interval[1] - cls.interval[0] < 0.05  # ±1.96 · 0.25 · √(2/1000) · 1.02 ≈ ±2.2%, not widened


def test_the_tail_interval_covers_no_change_on_correlated_requests() -> None:
    rng = np.random.default_rng(32)
    covered = 0
    z_beyond = 0
    for _ in range(40):
        t = quantile_test(ar1_latencies(rng, 1000), ar1_latencies(rng, 1000), 0.95)
        assert t is not None
        lo, hi = t.bounds(1.96)
        covered += lo <= 1.0 <= hi
        z_beyond += abs(t.z) > 1.96
    assert covered >= 34  # the independent-request interval: 20
    assert z_beyond <= 6  # two-sided 5%: 2 of 40 expected


def test_a_a_on_correlated_requests_does_not_fail() -> None:
    rng = np.random.default_rng(33)
    verdicts = [
        judge(evidence(ar1_latencies(rng, 1000), ar1_latencies(rng, 1000)), GatesSection()).verdict for _ in range(30)
    ]
    assert verdicts.count(FAIL) == 0  # the independent-request gates: 3 of 30


def test_a_warm_up_in_one_arm_is_cut_from_both_and_said() -> None:
    rng = np.random.default_rng(34)
    b, c = rng.lognormal(3.2, 0.25, 1000), rng.lognormal(3.2, 0.25, 1000)
    c[:200] *= 2.0 - np.arange(200) / 200  # the candidate's cold start: 2× slower, settling over 200 requests
    v = judge(evidence(b, c), GatesSection())
    assert v.verdict != FAIL
    tail = next(g for g in v.gates if g.name == "latency_p95_ratio")
    assert "warm-up: first" in tail.reason
    shift = next(g for g in v.gates if g.name == "latency_ms shift")
    assert "warm-up: first" in shift.reason
    # the same slowdown kept for the whole run is a regression, warm-up or not
    c2 = rng.lognormal(3.2, 0.25, 1000) * 1.3
    assert judge(evidence(b, c2), GatesSection()).verdict == FAIL
