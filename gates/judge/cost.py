"""Cost per token: accelerator price over measured output throughput, for each arm."""

from __future__ import annotations

import dataclasses
import math

from gates.config.schema import CostSection
from gates.judge.verdict import GateResult, Status


@dataclasses.dataclass(frozen=True)
class Cost:
    baseline_usd_per_mtok: float
    candidate_usd_per_mtok: float
    saving: float  # 0.25 = the candidate is 25% cheaper per output token


def cost_per_mtok(usd_per_hour: float, tokens_per_s: float) -> float:
    return usd_per_hour / 3600.0 / tokens_per_s * 1e6 if tokens_per_s > 0 else math.inf


def compare(usd_per_hour: float, baseline_tps: float, candidate_tps: float) -> Cost:
    b, c = cost_per_mtok(usd_per_hour, baseline_tps), cost_per_mtok(usd_per_hour, candidate_tps)
    return Cost(b, c, 1 - c / b if math.isfinite(b) and b > 0 else math.nan)


def cost_gate(
    baseline_tps: float | None,
    candidate_tps: float | None,
    cfg: CostSection | None,
    simulated: bool,
    simulated_reason: str,
) -> GateResult:
    name = "cost_saving"
    if cfg is None:
        return GateResult(name, Status.NOT_APPLIED, None, "—", "no accelerator price configured (gates.cost)")
    thr = f"≥ {cfg.min_saving:.0%}" if cfg.min_saving is not None else "—"
    measured = bool(baseline_tps and candidate_tps and math.isfinite(baseline_tps) and math.isfinite(candidate_tps))
    if simulated and not measured:  # not judged anyway: nothing measured blocks nothing either
        why = f"not applied: {simulated_reason or 'candidate performance is simulated'}; no output throughput measured"
        return GateResult(name, Status.NOT_APPLIED, None, thr, why, blocking=False)
    if not measured:
        status = Status.NO_DATA if cfg.min_saving is not None else Status.NOT_APPLIED
        return GateResult(name, status, None, thr, "no output throughput measured for one arm")
    assert baseline_tps is not None and candidate_tps is not None
    cost = compare(cfg.usd_per_hour, baseline_tps, candidate_tps)
    detail = (
        f"${cost.baseline_usd_per_mtok:.2f} → ${cost.candidate_usd_per_mtok:.2f} per 1M output tokens "
        f"at ${cfg.usd_per_hour:.2f}/h: saving {cost.saving:+.1%}"
    )
    if simulated:
        return GateResult(
            name,
            Status.NOT_APPLIED,
            cost.saving,
            thr,
            f"not applied: {simulated_reason or 'candidate performance is simulated'}; measured {detail}",
            blocking=False,
        )
    if cfg.min_saving is None:
        return GateResult(
            name, Status.NOT_APPLIED, cost.saving, thr, f"{detail} (no minimum configured)", blocking=False
        )
    ok = cost.saving >= cfg.min_saving
    return GateResult(name, Status.PASS if ok else Status.FAIL, cost.saving, thr, detail)
