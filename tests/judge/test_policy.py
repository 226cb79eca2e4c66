from __future__ import annotations

import math

import numpy as np
import pytest

from gates.config.schema import GatesSection
from gates.judge.policy import FAIL, INCONCLUSIVE, PASS, Evidence, Status, judge
from gates.judge.stats import percentile_ratio_ci


def _samples(scale: float, n: int = 200, seed: int = 1) -> tuple[float, ...]:
    rng = np.random.default_rng(seed)
    return tuple(float(x) for x in rng.lognormal(np.log(20 * scale), 0.25, n))


def _ev(**over: object) -> Evidence:
    base = dict(
        baseline_latency_ms=_samples(1.0, seed=1),
        candidate_latency_ms=_samples(1.0, seed=2),
        baseline_error_rate=0.0,
        candidate_error_rate=0.0,
        candidate_requests=200,
        exact_match_rate=1.0,
        top1_agreement=1.0,
        mean_kl=0.0,
        golden_prompts=10,
        latency_simulated=False,
    )
    base.update(over)
    return Evidence(**base)  # type: ignore[arg-type]


CFG = GatesSection(
    latency_p95_ratio_max=1.10,
    error_rate_max=0.001,
    top1_agreement_min=0.95,
    exact_match_rate_min=0.8,
    mean_kl_max=0.05,
    min_requests=30,
)


def _gate(v: object, name: str) -> object:
    return next(g for g in v.gates if g.name == name)  # type: ignore[attr-defined]


def test_healthy_candidate_passes() -> None:
    # A/A with enough samples: the p95-ratio interval is narrow enough to sit below 1.10
    v = judge(
        _ev(baseline_latency_ms=_samples(1.0, n=2000, seed=1), candidate_latency_ms=_samples(1.0, n=2000, seed=2)), CFG
    )
    assert v.verdict == PASS, v.reason


def test_clear_latency_regression_fails_with_interval() -> None:
    v = judge(_ev(candidate_latency_ms=_samples(1.5, seed=2)), CFG)
    g = _gate(v, "latency_p95_ratio")
    assert v.verdict == FAIL and g.status == Status.FAIL  # type: ignore[attr-defined]
    lo, hi = g.interval  # type: ignore[attr-defined]
    assert 1.10 < lo <= g.observed <= hi  # type: ignore[attr-defined]


def test_straddling_interval_is_inconclusive() -> None:
    v = judge(
        _ev(baseline_latency_ms=_samples(1.0, n=40, seed=3), candidate_latency_ms=_samples(1.1, n=40, seed=4)), CFG
    )
    assert _gate(v, "latency_p95_ratio").status in (Status.INCONCLUSIVE, Status.FAIL, Status.PASS)  # type: ignore[attr-defined]
    if _gate(v, "latency_p95_ratio").status == Status.INCONCLUSIVE:  # type: ignore[attr-defined]
        assert v.verdict == INCONCLUSIVE


def test_too_few_requests_is_never_pass() -> None:
    v = judge(_ev(baseline_latency_ms=_samples(1.0, n=5), candidate_latency_ms=_samples(1.0, n=5)), CFG)
    assert v.verdict == INCONCLUSIVE
    assert _gate(v, "latency_p95_ratio").status == Status.NO_DATA  # type: ignore[attr-defined]


@pytest.mark.parametrize("field", ["exact_match_rate", "top1_agreement", "mean_kl"])
@pytest.mark.parametrize("value", [None, math.nan])
def test_missing_quality_metric_is_never_pass(field: str, value: float | None) -> None:
    v = judge(_ev(**{field: value}), CFG)
    assert v.verdict == INCONCLUSIVE
    assert _gate(v, field).status == Status.NO_DATA  # type: ignore[attr-defined]


def test_no_load_data_is_never_pass() -> None:
    v = judge(
        _ev(
            baseline_latency_ms=None,
            candidate_latency_ms=None,
            baseline_error_rate=None,
            candidate_error_rate=None,
            candidate_requests=0,
        ),
        CFG,
    )
    assert v.verdict == INCONCLUSIVE


def test_quality_regression_fails() -> None:
    v = judge(_ev(top1_agreement=0.5, exact_match_rate=0.1, mean_kl=2.0), CFG)
    assert v.verdict == FAIL
    assert {g.name for g in v.gates if g.status == Status.FAIL} == {"top1_agreement", "exact_match_rate", "mean_kl"}


def test_errors_fail_and_unhealthy_baseline_is_inconclusive() -> None:
    assert judge(_ev(candidate_error_rate=0.2), CFG).verdict == FAIL
    assert judge(_ev(baseline_error_rate=0.2), CFG).verdict == INCONCLUSIVE


def test_simulated_latency_is_not_applied_and_says_why() -> None:
    v = judge(
        _ev(candidate_latency_ms=_samples(6.0, seed=2), latency_simulated=True, simulated_reason="fake-quant"), CFG
    )
    g = _gate(v, "latency_p95_ratio")
    assert v.verdict == PASS
    assert g.status == Status.NOT_APPLIED and "fake-quant" in g.reason and g.observed > 5  # type: ignore[attr-defined]
    assert "not judged: latency_p95_ratio" in v.reason


def test_all_gates_disabled_is_inconclusive() -> None:
    cfg = GatesSection(latency_p95_ratio_max=None, top1_agreement_min=None, exact_match_rate_min=None, mean_kl_max=None)
    v = judge(_ev(candidate_requests=0, candidate_error_rate=None), cfg)
    assert v.verdict == INCONCLUSIVE


def test_bootstrap_ci_is_deterministic_and_brackets_observed() -> None:
    b, c = _samples(1.0, seed=1), _samples(1.3, seed=2)
    r1, r2 = percentile_ratio_ci(b, c), percentile_ratio_ci(b, c)
    assert r1 == r2
    observed, lo, hi = r1
    assert lo <= observed <= hi
    assert all(math.isnan(x) for x in percentile_ratio_ci([], c))
