"""The load modes of ``load:``: which mode (gates/loadmodes/), its arrivals, and sweeps.

Each mode's own rules live in its class (gates/loadmodes/closed.py, open.py): ``closed`` (the
default) is N users each sending a request as soon as the last one came back; ``open`` sends
requests at ``rate`` per second per arm whether or not earlier ones came back. ``sweep`` measures
several steps of the mode's quantity (concurrency, rate), both arms interleaved in every step, for
the capacity at the SLO.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gates.loadmodes import LOAD_MODES, LoadMode

Arrivals = Literal["poisson", "constant"]


class SweepSection(BaseModel):
    """Steps run after the main window, each with its own warm-up, at every value of ``over``."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    over: Literal["concurrency", "rate"]
    values: list[float] = Field(min_length=1, max_length=64)
    duration_s: float = Field(default=10.0, gt=0, le=3600)  # per step, warm-up included
    warmup_s: float = Field(default=1.0, ge=0)
    # stop the sweep once both arms missed the SLO at a step (higher steps only load them more)
    stop_when_both_fail: bool = True

    @field_validator("values")
    @classmethod
    def _values(cls, v: list[float]) -> list[float]:
        if any(x <= 0 or x > 10_000 for x in v):
            raise ValueError("load.sweep.values must be in (0, 10000]")
        if v != sorted(set(v)):
            raise ValueError("load.sweep.values must be strictly increasing")
        return v


class CapacitySearchSection(BaseModel):
    """Capacity by search (gates/judge/capacity_probes.py, capacity_search.py): open-loop probes after
    the main window (each arm its own rate, a share of the same arrivals), bracketing then bisecting
    each arm's highest rate whose p95 of ``metric`` meets the SLO, then probing around the boundaries
    until the gain is within ``halfwidth``."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    start: float = Field(default=1.0, gt=0, le=10_000)  # the first probe's rate, requests/s per arm
    max_probes: int = Field(default=12, ge=2, le=64)  # windows, each informing both arms
    tolerance: float = Field(default=0.05, gt=0, le=1)  # stop bisecting an arm at hi/lo ≤ 1 + tolerance
    # after the brackets settle, probe around the boundaries until the capacity gain's interval is
    # within ± this fraction of the gain (or max_probes ran); 0: stop when the brackets settle
    halfwidth: float = Field(default=0.10, ge=0, le=10)
    # per probe, warm-up included. Near capacity a short window holds few long busy periods and
    # reads the p95 low, so the capacity high: on simulated M/M/8 servers each arm's interval
    # covered the truth 0.870 of the time with 60 s windows, 0.940 with 120 s, 0.983 with 240 s
    # (benchmarks/capacity.py --simulated 150 --sim-window S); two demo searches at 120 s agreed
    duration_s: float = Field(default=120.0, gt=0, le=3600)
    warmup_s: float = Field(default=3.0, ge=0)
    # the SLO metric searched on (its load.slo limit); default: the only limit load.slo sets
    metric: Literal["latency_ms", "ttft_ms", "itl_ms"] | None = None

    def slo_metric(self, limits: dict[str, float]) -> str:
        if self.metric is not None:
            if self.metric not in limits:
                raise ValueError(f"load.capacity_search.metric {self.metric!r} has no limit in load.slo")
            return self.metric
        if len(limits) != 1:
            raise ValueError("load.capacity_search needs one SLO metric: set load.slo with one limit, or metric")
        return next(iter(limits))


def check_search(
    mode: LoadMode, search: CapacitySearchSection | None, sweep: SweepSection | None, slo: dict[str, float]
) -> None:
    if search is None:
        return
    if mode != LoadMode.open:
        raise ValueError("load.capacity_search probes rates: it needs load.mode: open")
    if sweep is not None:
        raise ValueError("load.capacity_search and load.sweep both measure capacity: set one")
    if search.warmup_s >= search.duration_s:
        raise ValueError("load.capacity_search.warmup_s must be shorter than its duration_s")
    search.slo_metric(slo)


def check_modes(
    mode: LoadMode,
    rate: float | None,
    sweep: SweepSection | None,
    slo_limits: dict[str, float],
    own_times: bool = False,
) -> None:
    """The cross-field rules of the load modes; raises ValueError with what to change.

    ``own_times``: the workload carries its arrival times (a trace), which pace an open loop in
    place of ``load.rate``."""
    if own_times and mode == LoadMode.open:
        if sweep is not None:
            raise ValueError("a trace workload paces the open loop by its own times: drop load.sweep")
        return
    LOAD_MODES[mode].check(rate, sweep)  # the mode's own rules: rate, which sweep
    if sweep is None:
        return
    if sweep.warmup_s >= sweep.duration_s:
        raise ValueError("load.sweep.warmup_s must be shorter than load.sweep.duration_s")
    if not slo_limits:
        raise ValueError("load.sweep measures capacity at the SLO: set at least one limit in load.slo")
