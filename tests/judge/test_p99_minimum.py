"""A p99 gate on fewer than 1,000 requests per arm says so and is INCONCLUSIVE, never PASS."""

from __future__ import annotations

import numpy as np
import pytest

from gates.config.schema import GatesSection
from gates.judge.policy import P99_MIN_REQUESTS, Evidence, tail_gates
from gates.judge.verdict import Status


def _ev(n: int, seed: int = 0) -> Evidence:
    rng = np.random.default_rng(seed)
    b = tuple(float(x) for x in rng.lognormal(4.6, 0.2, n))
    c = tuple(float(x) for x in rng.lognormal(4.6, 0.2, n))
    return Evidence(
        series={"latency_ms": (b, c)},
        baseline_error_rate=0.0,
        candidate_error_rate=0.0,
        candidate_requests=n,
        exact_match_rate=None,
        top1_agreement=None,
        mean_kl=None,
        golden_prompts=0,
        latency_simulated=False,
    )


CFG = GatesSection(latency_p95_ratio_max=1.5, latency_p99_ratio_max=1.5, min_requests=30)


@pytest.mark.parametrize("n", [300, 999])
def test_too_few_for_a_p99_is_inconclusive_and_says_why(n: int) -> None:
    p95, p99 = tail_gates(_ev(n), CFG, shift_passed=False)
    assert p99.name == "latency_p99_ratio" and p99.status == Status.INCONCLUSIVE and p99.blocking
    assert f"a p99 on {n} requests per arm" in p99.reason and "fewer than 1000" in p99.reason
    assert p95.status == Status.PASS  # the p95 rests on 5% of them: judged as before


def test_enough_requests_let_the_p99_pass() -> None:
    _, p99 = tail_gates(_ev(P99_MIN_REQUESTS + 500, seed=1), CFG, shift_passed=False)
    assert p99.status == Status.PASS
