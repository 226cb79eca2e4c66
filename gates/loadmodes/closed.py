"""``mode: closed`` (the default): ``load.users`` users, each sending its next pair when the last came back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from gates.loadmodes.base import Users

if TYPE_CHECKING:
    from gates.config.load_modes import SweepSection
    from gates.loadgen.spec import LoadSpec


class ClosedMode:
    sweep_over = "concurrency"
    sweep_unit = "users"

    def check(self, rate: float | None, sweep: SweepSection | None) -> None:
        if rate is not None:
            raise ValueError("load.rate applies to load.mode 'open' only (closed loop is set by load.users)")
        if sweep is None:
            return
        if sweep.over != self.sweep_over:
            raise ValueError(f"load.sweep over {sweep.over!r} needs load.mode: open")
        if any(x != int(x) for x in sweep.values):
            raise ValueError("load.sweep.values over concurrency must be whole numbers of users")

    def pacing(self, spec: LoadSpec) -> Users:
        return Users(spec.users)

    def sweep_step(self, spec: LoadSpec, value: float) -> dict[str, Any]:
        return {"users": int(value), "spawn_rate": value}  # all users at once: the step is short

    def describe(self, spec: LoadSpec) -> str:
        return f"{spec.users} users"

    def report_arrivals(self, arrivals: str) -> str | None:
        return None  # a closed loop has no arrival process: each response is the next request's cue

    def title(self, load: Mapping[str, Any]) -> str:
        return f"{load['users']} users"
