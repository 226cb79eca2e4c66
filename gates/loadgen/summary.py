"""``summary.json``: what the load worker measured about itself, written by the worker, read by the stage.

One dataclass on both sides, so the file's keys are named once. The self-check
(gates/stages/load.py ``generator_problem``) reads the generator's CPU and event-loop lag; the
judge reads the looks of an adaptive load; report.json's ``load.generator`` is :meth:`to_json`.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from gates.errors import InfraError
from gates.judge.adaptive import Look


@dataclasses.dataclass(frozen=True)
class Stopped:
    """Why and when the load stopped."""

    reason: str  # duration | min_requests | max_duration | settled
    duration_s: float  # seconds from the start of the load
    # adaptive stopping only (gates/judge/adaptive.py): the last look's decision, why, every look
    decision: str | None = None
    detail: str | None = None
    looks: tuple[Look, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"reason": self.reason, "duration_s": self.duration_s}
        if self.decision is not None:
            out["decision"] = self.decision
        if self.detail is not None:
            out["detail"] = self.detail
        if self.looks is not None:
            out["looks"] = [x.to_json() for x in self.looks]
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Stopped:
        looks = data.get("looks")
        return cls(
            reason=str(data["reason"]),
            duration_s=float(data["duration_s"]),
            decision=data.get("decision"),
            detail=data.get("detail"),
            looks=None
            if looks is None
            else tuple(Look(int(x["n_baseline"]), int(x["n_candidate"]), float(x["fraction"])) for x in looks),
        )


@dataclasses.dataclass(frozen=True)
class ArrivalStats:
    """An open loop's scheduler: how many arrivals it sent and how late."""

    rate: float | None  # requests/s per arm offered
    arrivals: int
    arrival_lag_ms_p95: float | None  # None: no arrival was sent
    dropped: int  # requests not sent: max_in_flight were outstanding

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class GeneratorSummary:
    wall_s: float
    generator_cpu_s: float
    generator_cpu_util: float | None  # CPU seconds per wall second (1.0: a whole core)
    loop_lag_ms_p50: float | None  # how late a 20 ms sleep of the event loop woke up
    loop_lag_ms_p95: float | None
    loop_lag_samples: int
    users: int
    locust_requests: int
    locust_failures: int
    records: int  # rows of requests.csv
    stopped: Stopped | None
    mode: str
    arrivals: ArrivalStats | None = None  # paced by arrivals (open loop) only
    processes: int = 1  # locust worker processes (load.generator_processes; gates/loadgen/distributed.py)

    def to_json(self) -> dict[str, Any]:
        out = {
            f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("arrivals", "processes")
        }
        if self.processes > 1:  # one process (the usual case) keeps the summary as it always was
            out["processes"] = self.processes
        out["stopped"] = self.stopped.to_json() if self.stopped else None
        return {**out, **(self.arrivals.to_json() if self.arrivals else {})}

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=2))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GeneratorSummary:
        stopped = data.get("stopped")
        return cls(
            wall_s=float(data["wall_s"]),
            generator_cpu_s=float(data["generator_cpu_s"]),
            generator_cpu_util=_float(data.get("generator_cpu_util")),
            loop_lag_ms_p50=_float(data.get("loop_lag_ms_p50")),
            loop_lag_ms_p95=_float(data.get("loop_lag_ms_p95")),
            loop_lag_samples=int(data["loop_lag_samples"]),
            users=int(data["users"]),
            locust_requests=int(data["locust_requests"]),
            locust_failures=int(data["locust_failures"]),
            records=int(data["records"]),
            stopped=Stopped.from_json(stopped) if stopped else None,
            mode=str(data["mode"]),
            arrivals=None
            if "dropped" not in data
            else ArrivalStats(
                _float(data.get("rate")),
                int(data["arrivals"]),
                _float(data.get("arrival_lag_ms_p95")),
                int(data["dropped"]),
            ),
            processes=int(data.get("processes", 1)),
        )

    @classmethod
    def read(cls, path: Path) -> GeneratorSummary:
        """The worker's summary; a missing or malformed file is an infrastructure fault naming it."""
        try:
            return cls.from_json(json.loads(path.read_text()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:  # not the shape written
            raise InfraError(f"the load generator's summary {path} is unreadable: {type(e).__name__}: {e}") from e


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
