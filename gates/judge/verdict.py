"""What a gate decided and what the verdict is: the types every judge module and the report share."""

from __future__ import annotations

import dataclasses
import math
from enum import StrEnum
from typing import Any


def finite_or_none(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


class Decision(StrEnum):
    """The verdict of a run (report.json ``verdict``, the exit code, the ledger)."""

    PASS = "PASS"
    FAIL = "FAIL"
    INCONCLUSIVE = "INCONCLUSIVE"


PASS, FAIL, INCONCLUSIVE = Decision.PASS, Decision.FAIL, Decision.INCONCLUSIVE


class Status(StrEnum):
    """What one gate decided: the one vocabulary of every gate, the report and report.json."""

    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"
    NO_DATA = "no_data"
    NOT_APPLIED = "not_applied"


@dataclasses.dataclass(frozen=True)
class GateResult:
    name: str
    status: str
    observed: float | None
    threshold: str
    reason: str
    interval: tuple[float, float] | None = None
    p_value: float | None = None
    blocking: bool = True  # False: shown, and counted in the score, but cannot decide the verdict

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["observed"] = finite_or_none(self.observed)
        d["interval"] = [finite_or_none(x) for x in self.interval] if self.interval else None
        d["p_value"] = finite_or_none(self.p_value)
        return d


@dataclasses.dataclass(frozen=True)
class Verdict:
    verdict: Decision
    reason: str
    gates: tuple[GateResult, ...]


def decide(gates: tuple[GateResult, ...]) -> Verdict:
    """The verdict over the blocking gates: any FAIL -> FAIL; else any INCONCLUSIVE/NO_DATA ->
    INCONCLUSIVE; else PASS when at least one gate was applied. Nothing missing becomes a pass."""
    blocking = [g for g in gates if g.blocking]
    failed = [g for g in blocking if g.status == Status.FAIL]
    unsure = [g for g in blocking if g.status in (Status.INCONCLUSIVE, Status.NO_DATA)]
    applied = [g for g in blocking if g.status != Status.NOT_APPLIED]
    skipped = [g for g in gates if g.status == Status.NOT_APPLIED and g.observed is not None]
    if failed:
        return Verdict(FAIL, "failed: " + "; ".join(f"{g.name} ({g.reason})" for g in failed), gates)
    if unsure:
        return Verdict(INCONCLUSIVE, "inconclusive: " + "; ".join(f"{g.name} ({g.reason})" for g in unsure), gates)
    if not applied:
        return Verdict(INCONCLUSIVE, "inconclusive: no gate could be applied", gates)
    reason = f"all {len(applied)} applied gates passed"
    if skipped:
        reason += "; not judged: " + ", ".join(g.name for g in skipped) + " (see reasons)"
    return Verdict(PASS, reason, gates)
