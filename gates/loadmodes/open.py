"""``mode: open``: pairs arrive at ``load.rate`` per second per arm whether or not earlier ones came back.

That is how real traffic arrives and the only way to see queueing past a server's capacity. The
arrivals are Poisson or evenly spaced (gates/loadmodes/arrivals.py); the worker's scheduler
(gates/loadgen/open_loop.py) sends them and records how late it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from gates.loadmodes.arrivals import arrival_times
from gates.loadmodes.base import Arrivals, num

if TYPE_CHECKING:
    from gates.config.load_modes import SweepSection
    from gates.loadgen.spec import LoadSpec


class OpenMode:
    sweep_over = "rate"
    sweep_unit = "requests/s per arm"

    def check(self, rate: float | None, sweep: SweepSection | None) -> None:
        if rate is None and (sweep is None or sweep.over != self.sweep_over):
            raise ValueError("load.mode 'open' needs load.rate (requests/s per arm) or a load.sweep over rate")
        if sweep is not None and sweep.over != self.sweep_over:
            raise ValueError(f"load.sweep over {sweep.over!r} needs load.mode: closed")

    def pacing(self, spec: LoadSpec) -> Arrivals:
        if spec.rate is None:
            raise ValueError("an open-loop load needs a rate")
        return Arrivals(arrival_times(spec.rate, spec.arrivals, spec.seed))

    def sweep_step(self, spec: LoadSpec, value: float) -> dict[str, Any]:
        return {"rate": value}

    def describe(self, spec: LoadSpec) -> str:
        return f"{spec.arrivals} arrivals at {num(spec.rate, 'g')}/s per arm"

    def report_arrivals(self, arrivals: str) -> str | None:
        return arrivals

    def title(self, load: Mapping[str, Any]) -> str:
        return f"open loop, {load['arrivals']} arrivals at {num(load['rate'])} requests/s per arm"
