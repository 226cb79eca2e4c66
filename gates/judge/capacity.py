"""Gates on the capacity at the SLO (gates/loadgen/capacity.py): its gain and the cost there.

``capacity_gain``: candidate capacity / baseline capacity, judged on the bracket of the sweep:
PASS when even its lower end (candidate's last certain pass over the baseline's first certain fail)
meets ``capacity_gain_min``, FAIL when even its upper end (candidate's first certain fail over the
baseline's last certain pass) does not, INCONCLUSIVE otherwise (a finer or wider sweep decides).

``cost_at_slo``: the relative change of the cost per 1M output tokens, each arm served at its
capacity, against ``cost_at_slo_increase_max``.

Fail closed: a threshold without a sweep is NO_DATA; an arm that met the SLO at no step has no
capacity: the candidate then FAILS (the baseline met it somewhere, the candidate nowhere), and a
baseline without capacity makes the gate INCONCLUSIVE (sweep lower), never a PASS.
"""

from __future__ import annotations

from gates.config.schema import GatesSection
from gates.judge.policy import Evidence
from gates.judge.verdict import GateResult, Status
from gates.loadgen.capacity import Capacity


def _unit(cap: Capacity) -> str:
    return "req/s" if cap.over == "rate" else "users"


def _missing(cap: Capacity, name: str, thr: str) -> GateResult | None:
    b, c = cap.baseline.max_rate, cap.candidate.max_rate
    if b is None:
        return GateResult(
            name, Status.INCONCLUSIVE, None, thr, "the baseline met the SLO at no sweep step: sweep lower values"
        )
    if c is None:
        return GateResult(
            name,
            Status.FAIL,
            None,
            thr,
            f"the candidate met the SLO at no sweep step (baseline up to {b:g} {_unit(cap)})",
        )
    return None


def _not_judged(name: str, thr: str, unusable: str) -> GateResult:
    """Performance cannot be judged in this run: a capacity that is missing blocks nothing either."""
    return GateResult(name, Status.NOT_APPLIED, None, thr, f"not applied: {unusable}; no capacity", blocking=False)


def capacity_gain_gate(cap: Capacity | None, cfg: GatesSection, unusable: str | None) -> GateResult:
    name = "capacity_gain"
    limit = cfg.capacity_gain_min
    if limit is None:
        return GateResult(name, Status.NOT_APPLIED, None, "—", "no threshold configured (gates.capacity_gain_min)")
    thr = f"≥ {limit:.3g}"
    if unusable and (cap is None or cap.baseline.max_rate is None or cap.candidate.max_rate is None):
        return _not_judged(name, thr, unusable)
    if cap is None:
        return GateResult(name, Status.NO_DATA, None, thr, "no capacity measured: configure load.sweep")
    missing = _missing(cap, name, thr)
    if missing is not None:
        return missing
    est, low, high = cap.gain()
    assert est is not None
    unit = _unit(cap)
    detail = (
        f"capacity {cap.baseline.max_rate:g} → {cap.candidate.max_rate:g} {unit} at the SLO: gain {est:.3g}, "
        f"bracket {'?' if low is None else f'{low:.3g}'} to {'?' if high is None else f'{high:.3g}'}"
    )
    interval = (low, high) if low is not None and high is not None else None
    if unusable:
        return GateResult(
            name, Status.NOT_APPLIED, est, thr, f"not applied: {unusable}; measured {detail}", interval, blocking=False
        )
    if low is not None and low >= limit:
        return GateResult(name, Status.PASS, est, thr, detail, interval)
    if high is not None and high <= limit:
        return GateResult(name, Status.FAIL, est, thr, detail + f": entirely below {limit:.3g}", interval)
    return GateResult(
        name, Status.INCONCLUSIVE, est, thr, detail + f": straddles {limit:.3g}; sweep finer or wider", interval
    )


def cost_at_slo_gate(cap: Capacity | None, cfg: GatesSection, unusable: str | None) -> GateResult:
    name = "cost_at_slo"
    limit = cfg.cost_at_slo_increase_max
    if limit is None:
        why = "no threshold configured (gates.cost_at_slo_increase_max)"
        return GateResult(name, Status.NOT_APPLIED, None, "—", why)
    thr = f"≤ {limit:+.0%}"
    if unusable and (cap is None or cap.baseline.max_rate is None or cap.candidate.max_rate is None):
        return _not_judged(name, thr, unusable)
    if cfg.cost is None:
        return GateResult(name, Status.NO_DATA, None, thr, "no accelerator price configured (gates.cost)")
    if cap is None:
        return GateResult(name, Status.NO_DATA, None, thr, "no capacity measured: configure load.sweep")
    missing = _missing(cap, name, thr)
    if missing is not None:
        return missing
    b, c = cap.baseline.usd_per_1m_tokens, cap.candidate.usd_per_1m_tokens
    if unusable and (not b or c is None):
        return _not_judged(name, thr, unusable)
    if not b or c is None:
        return GateResult(name, Status.NO_DATA, None, thr, "no output tokens measured at an arm's capacity")
    change = c / b - 1
    detail = f"${b:.2f} → ${c:.2f} per 1M output tokens at each arm's capacity: {change:+.1%}"
    if unusable:
        why = f"not applied: {unusable}; measured {detail}"
        return GateResult(name, Status.NOT_APPLIED, change, thr, why, blocking=False)
    return GateResult(name, Status.PASS if change <= limit else Status.FAIL, change, thr, detail)


def capacity_gates(cap: Capacity | None, cfg: GatesSection, unusable: str | None) -> tuple[GateResult, ...]:
    """The capacity gates that have a threshold (none configured: the verdict is unchanged)."""
    gates = (capacity_gain_gate(cap, cfg, unusable), cost_at_slo_gate(cap, cfg, unusable))
    return tuple(g for g in gates if g.threshold != "—")  # a gate with its threshold set is shown


class CapacityGates:
    """The capacity gates as a gate set (gates/judge/decide.py's registry)."""

    def gates(self, evidence: Evidence, capacity: Capacity | None, cfg: GatesSection) -> tuple[GateResult, ...]:
        simulated = evidence.simulated_reason or "candidate performance is simulated"
        return capacity_gates(capacity, cfg, simulated if evidence.latency_simulated else None)
