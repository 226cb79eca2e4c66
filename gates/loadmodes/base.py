"""What a load mode is: the Protocol every mode class follows, and the two ways the worker paces.

A mode is light (imported by config validation): it never imports gevent or locust. It describes
the pacing as data (:class:`Users` or :class:`Arrivals`); the worker (gates/loadgen/worker.py), the
only process that imports locust, runs it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from gates.config.load_modes import SweepSection
    from gates.loadgen.spec import LoadSpec


@dataclasses.dataclass(frozen=True)
class Users:
    """Closed loop: ``count`` users, each sending its next pair as soon as the last one came back."""

    count: int


@dataclasses.dataclass(frozen=True)
class Arrivals:
    """Open loop: one pair at each of ``times`` (seconds from the start, non-decreasing), whether or
    not earlier requests came back; the load stops when the stopping rule says so or ``times`` ends."""

    times: Iterator[float]


Pacing = Users | Arrivals


class Mode(Protocol):
    """One load mode (registered in gates.loadmodes.LOAD_MODES)."""

    # the quantity a ``load.sweep`` over this mode steps, as ``load.sweep.over`` names it
    sweep_over: str
    # the unit of one sweep step, for the progress line ("users", "requests/s per arm")
    sweep_unit: str

    def check(self, rate: float | None, sweep: SweepSection | None) -> None:
        """The cross-field rules of ``load:`` for this mode; raises ValueError saying what to change."""
        ...

    def pacing(self, spec: LoadSpec) -> Pacing:
        """How the worker sends the pairs of this spec."""
        ...

    def sweep_step(self, spec: LoadSpec, value: float) -> dict[str, Any]:
        """The spec fields one sweep step at ``value`` replaces (e.g. ``{"rate": value}``)."""
        ...

    def describe(self, spec: LoadSpec) -> str:
        """The load for the progress line, e.g. "4 users"."""
        ...

    def report_arrivals(self, arrivals: str) -> str | None:
        """report.json's ``load.arrivals``: the arrival process ``load.arrivals`` names, where it applies."""
        ...

    def title(self, load: Mapping[str, Any]) -> str:
        """The report's heading of the load section, from report.json's ``load`` (plain text)."""
        ...


def num(value: Any, fmt: str = ".3g") -> str:
    """A number as the report writes it; "—" when missing."""
    return format(value, fmt) if isinstance(value, (int, float)) else "—"
