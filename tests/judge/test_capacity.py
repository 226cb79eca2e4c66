"""The capacity gates: judged on the sweep's bracket, fail closed when a capacity is missing."""

from __future__ import annotations

from gates.config.schema import CostSection, GatesSection
from gates.judge.capacity import capacity_gain_gate, capacity_gates, cost_at_slo_gate
from gates.judge.policy import Status
from gates.loadgen.capacity import ArmCapacity, Capacity


def cap(b: tuple[float | None, float | None, float | None], c: tuple[float | None, float | None, float | None],
        b_usd: float | None = 10.0, c_usd: float | None = 6.0) -> Capacity:  # fmt: skip
    return Capacity(
        "rate", {"latency_ms": 1000.0}, (), {}, ArmCapacity(*b, b_usd, 1.0, 1.0), ArmCapacity(*c, c_usd, 2.0, 2.0), 0.99
    )


GATES = GatesSection(capacity_gain_min=1.0, cost_at_slo_increase_max=0.0, cost=CostSection(usd_per_hour=2.5))


def test_not_configured_adds_no_gate() -> None:
    assert capacity_gates(None, GatesSection(), None) == ()
    assert capacity_gates(cap((1, 1, 2), (2, 2, 4)), GatesSection(), None) == ()


def test_gain_on_the_bracket() -> None:
    # candidate certainly passes 4 where the baseline certainly fails 4: gain >= 1 for sure
    assert capacity_gain_gate(cap((2, 2, 4), (8, 4, 16)), GATES, None).status == Status.PASS
    # candidate certainly fails at 2 where the baseline certainly passes 2: gain <= 1 for sure
    g = capacity_gain_gate(cap((4, 2, 8), (1, 1, 2)), GATES, None)
    assert g.status == Status.FAIL and g.observed == 0.25 and g.interval == (1 / 8, 1.0)
    # the brackets overlap: undecided
    assert capacity_gain_gate(cap((2, 1, 4), (2, 1, 4)), GATES, None).status == Status.INCONCLUSIVE
    # the baseline never certainly failed: its capacity may lie beyond the sweep
    assert capacity_gain_gate(cap((4, 4, None), (8, 8, None)), GATES, None).status == Status.INCONCLUSIVE


def test_missing_capacity_never_passes() -> None:
    no_sweep = capacity_gates(None, GATES, None)
    assert [g.status for g in no_sweep] == [Status.NO_DATA, Status.NO_DATA]
    candidate_none = capacity_gates(cap((2, 2, 4), (None, None, 1)), GATES, None)
    assert [g.status for g in candidate_none] == [Status.FAIL, Status.FAIL]
    baseline_none = capacity_gates(cap((None, None, 1), (2, 2, 4)), GATES, None)
    assert [g.status for g in baseline_none] == [Status.INCONCLUSIVE, Status.INCONCLUSIVE]
    no_price = GatesSection(cost_at_slo_increase_max=0.0)
    assert cost_at_slo_gate(cap((2, 2, 4), (8, 4, 16)), no_price, None).status == Status.NO_DATA
    no_tokens = cap((2, 2, 4), (8, 4, 16), b_usd=None)
    assert cost_at_slo_gate(no_tokens, GATES, None).status == Status.NO_DATA


def test_cost_at_slo() -> None:
    g = cost_at_slo_gate(cap((2, 2, 4), (8, 4, 16)), GATES, None)
    assert g.status == Status.PASS and abs(g.observed - (-0.4)) < 1e-12  # type: ignore[operator]
    dearer = cost_at_slo_gate(cap((2, 2, 4), (8, 4, 16), c_usd=12.0), GATES, None)
    assert dearer.status == Status.FAIL


def test_simulated_performance_is_shown_not_judged() -> None:
    gates = capacity_gates(cap((2, 2, 4), (8, 4, 16)), GATES, "candidate performance is simulated")
    assert [(g.status, g.blocking) for g in gates] == [(Status.NOT_APPLIED, False)] * 2
