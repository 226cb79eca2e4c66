"""What a gate decided and what the verdict is: the types every judge module and the report share."""

from __future__ import annotations

import dataclasses
import math
from typing import Any


def finite_or_none(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


PASS, FAIL, INCONCLUSIVE = "PASS", "FAIL", "INCONCLUSIVE"


class Status:
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
    verdict: str
    reason: str
    gates: tuple[GateResult, ...]
