"""The load modes of ``load:`` beyond today's closed loop: open-loop arrivals and sweeps.

``mode: closed`` (the default) is N users each sending a request as soon as the last one came
back; ``mode: open`` sends requests at ``rate`` per second per arm whether or not earlier ones
came back (Poisson or evenly spaced arrivals), which is how real traffic arrives and the only way
to see queueing past a server's capacity. ``sweep`` measures several steps of concurrency (closed)
or rate (open), both arms interleaved in every step, for the capacity at the SLO.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

LoadMode = Literal["closed", "open"]
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


def check_modes(mode: LoadMode, rate: float | None, sweep: SweepSection | None, slo_limits: dict[str, float]) -> None:
    """The cross-field rules of the load modes; raises ValueError with what to change."""
    if mode == "open" and rate is None and (sweep is None or sweep.over != "rate"):
        raise ValueError("load.mode 'open' needs load.rate (requests/s per arm) or a load.sweep over rate")
    if mode == "closed" and rate is not None:
        raise ValueError("load.rate applies to load.mode 'open' only (closed loop is set by load.users)")
    if sweep is None:
        return
    if sweep.over == "rate" and mode != "open":
        raise ValueError("load.sweep over 'rate' needs load.mode: open")
    if sweep.over == "concurrency" and mode != "closed":
        raise ValueError("load.sweep over 'concurrency' needs load.mode: closed")
    if sweep.over == "concurrency" and any(x != int(x) for x in sweep.values):
        raise ValueError("load.sweep.values over concurrency must be whole numbers of users")
    if sweep.warmup_s >= sweep.duration_s:
        raise ValueError("load.sweep.warmup_s must be shorter than load.sweep.duration_s")
    if not slo_limits:
        raise ValueError("load.sweep measures capacity at the SLO: set at least one limit in load.slo")
