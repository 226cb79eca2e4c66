"""Load modes: how requests arrive, one class per mode behind one Protocol, in one lazy registry.

``closed`` (the default) is N users each sending a request as soon as the last one came back;
``open`` sends requests at ``rate`` per second per arm whether or not earlier ones came back. A
mode checks its part of ``load:``, says how the worker paces the requests (:mod:`.base`), how a
sweep steps it, and how the progress line and the report describe it. Adding a mode is its module
and one entry below (plus a :class:`LoadMode` member, which makes it a value ``load.mode`` accepts);
entries are imported on first use, so checking a config never imports the worker's gevent/locust.
"""

from __future__ import annotations

from enum import StrEnum

from gates.loadmodes.base import Arrivals, Mode, Pacing, Users
from gates.registry import LazyRegistry


class LoadMode(StrEnum):
    """The values of ``load.mode``; each names an entry of :data:`LOAD_MODES`."""

    closed = "closed"
    open = "open"


class OperatingPoint(StrEnum):
    """Where the load is measured (``load.operating_points``); each point is paired and judged.

    ``latency``: one request in flight per arm (a closed loop of one user): what a lone user sees.
    ``throughput``: the configured users or rate: what a loaded server does, batching included."""

    latency = "latency"
    throughput = "throughput"


LOAD_MODES: LazyRegistry[Mode] = LazyRegistry(
    "load mode",
    {
        LoadMode.closed: "gates.loadmodes.closed:ClosedMode",
        LoadMode.open: "gates.loadmodes.open:OpenMode",
    },
)

__all__ = ["LOAD_MODES", "Arrivals", "LoadMode", "Mode", "OperatingPoint", "Pacing", "Users"]
