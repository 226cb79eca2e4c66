"""Workloads (``load.workload``): what the paired requests say, and when conversations start.

A workload turns its part of the config into :class:`~gates.workloads.base.Conversation` s: a
start time (or none: the load mode paces it) and one or more turns, each a prompt, an output
length and class labels (input-length bucket, turn, group). Every turn is sent to both arms, so
the comparison stays paired whatever the workload. One class per kind behind one Protocol, in one
lazy registry, as the load modes (gates/loadmodes/); checking a config imports none of them.
"""

from __future__ import annotations

from enum import StrEnum

from gates.registry import LazyRegistry
from gates.workloads.base import Conversation, Turn, Workload


class WorkloadKind(StrEnum):
    """The values of ``load.workload.kind``; each names an entry of :data:`WORKLOADS`."""

    trace = "trace"
    shared_prefix = "shared_prefix"
    multi_turn = "multi_turn"
    lengths = "lengths"


WORKLOADS: LazyRegistry[Workload] = LazyRegistry(
    "workload",
    {
        WorkloadKind.trace: "gates.workloads.trace:TraceWorkload",
        WorkloadKind.shared_prefix: "gates.workloads.shared_prefix:SharedPrefixWorkload",
        WorkloadKind.multi_turn: "gates.workloads.multi_turn:MultiTurnWorkload",
        WorkloadKind.lengths: "gates.workloads.lengths:LengthsWorkload",
    },
)

__all__ = ["WORKLOADS", "Conversation", "Turn", "Workload", "WorkloadKind"]
