"""The one place where a run's verdict is decided.

Every gate meets here — performance and drift thresholds (policy.py), capacity (capacity.py),
quality (quality.py, through quality_gates.py) — and :func:`gates.judge.verdict.decide` runs once
over all of them. Each gate appears once: with ``gates.drift_intervals`` the drift thresholds
are the interval gates of the quality statistics, otherwise the point-estimate gates, and the
quality table shows only what is a gate here, with the status it has in the verdict.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

from gates.config.schema import GatesSection
from gates.judge.points import crossover
from gates.judge.policy import Evidence, performance_gates
from gates.judge.quality import QualityEntry
from gates.judge.verdict import GateResult, Status, Verdict, decide
from gates.loadgen.capacity import Capacity
from gates.registry import LazyRegistry


class GateSet(Protocol):
    """Gates judged from the run's evidence; each returns only the gates it has a threshold for."""

    def gates(self, evidence: Evidence, capacity: Capacity | None, cfg: GatesSection) -> tuple[GateResult, ...]: ...


# Gates beyond the built-in performance, drift and quality gates: one module and one entry each.
GATE_SETS: LazyRegistry[GateSet] = LazyRegistry(
    "gate set",
    {"capacity": "gates.judge.capacity:CapacityGates", "points": "gates.judge.points:PointGates"},
)

DRIFT_GATES = ("exact_match_rate", "top1_agreement", "mean_kl")


def shown_quality(entries: list[QualityEntry], cfg: GatesSection) -> tuple[QualityEntry, ...]:
    """The quality entries the report lists: drift entries only where they are the drift gates."""
    return tuple(e for e in entries if e.kind != "drift" or cfg.drift_intervals)


def verdict_of(
    evidence: Evidence, entries: list[QualityEntry], capacity: Capacity | None, cfg: GatesSection
) -> Verdict:
    """Every gate of the run, decided once."""
    perf = performance_gates(evidence, cfg)
    extra = [g for name in GATE_SETS for g in GATE_SETS[name].gates(evidence, capacity, cfg)]
    by_name = {e.name: e for e in entries}
    gates: list[GateResult] = []
    for g in perf:
        if cfg.drift_intervals and g.name in DRIFT_GATES and g.name in by_name:
            gates.append(by_name[g.name].gate())  # the interval gate replaces the point estimate
        else:
            gates.append(g)
    gates += extra
    # a quality gate without a threshold is reported in the quality table only, so pipelines that
    # configure none keep exactly the verdict (and reason) they had
    gates += [e.gate() for e in entries if e.kind != "drift" and e.status != Status.NOT_APPLIED]
    verdict = decide(tuple(gates))
    crossed = crossover(verdict)
    return dataclasses.replace(verdict, reason=f"{verdict.reason}; {crossed}") if crossed else verdict
