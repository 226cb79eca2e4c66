"""A metric gate scoped to a request class (gates.metrics[].where) judges that class's samples only."""

from __future__ import annotations

import numpy as np

from gates.config.schema import GatesSection, MetricSpec
from gates.judge.policy import Evidence, metric_gate
from gates.judge.verdict import Status


def _series(ms: float, n: int, seed: int) -> tuple[float, ...]:
    return tuple(float(x) for x in np.random.default_rng(seed).normal(ms, ms * 0.03, n))


def test_a_later_turn_regression_fails_the_scoped_gate_only() -> None:
    # turn 1 unchanged, later turns 30% slower to first token (a history the candidate handles worse)
    later = (_series(100, 200, 1), _series(130, 200, 2))
    ev = Evidence(
        series={"ttft_ms": (_series(50, 200, 3), _series(50, 200, 4)), "ttft_ms[turn>1]": later},
        baseline_error_rate=0.0,
        candidate_error_rate=0.0,
        candidate_requests=400,
        exact_match_rate=None,
        top1_agreement=None,
        mean_kl=None,
        golden_prompts=0,
        latency_simulated=False,
    )
    whole = MetricSpec(name="ttft_ms", direction="increase", allowed_effect=0.05)
    scoped = MetricSpec(name="ttft_ms", direction="increase", allowed_effect=0.05, where={"turn": ">1"})
    cfg = GatesSection(min_requests=30, metrics=[whole, scoped])
    assert metric_gate(ev, whole, cfg).status == Status.PASS
    gate = metric_gate(ev, scoped, cfg)
    assert gate.name == "ttft_ms[turn>1] shift" and gate.status == Status.FAIL
    # no sample of the class: no data (said, not passed)
    missing = MetricSpec(name="ttft_ms", direction="increase", where={"turn": ">5"})
    assert metric_gate(ev, missing, cfg).status == Status.NO_DATA
