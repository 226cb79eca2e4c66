"""The load stage's capacity search: one open-loop window per probe, its rates chosen by
gates/judge/capacity_probes.py (each arm its own rate, as a share of the same arrivals, unless a
workload's conversations must reach both arms whole), then the Capacity the capacity gates judge
(on the interval, gates/judge/capacity_search.py)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gates.config.schema import Pipeline
from gates.judge.capacity_probes import Rates, run_search
from gates.judge.capacity_search import ArmProbe, Probe, SearchPlan, SearchResult, own_rates, search_result
from gates.loadgen.capacity import Capacity, SweepStep, capacity
from gates.loadgen.run import run_worker
from gates.loadgen.spec import LoadSpec
from gates.loadgen.stats import read_records, summarize
from gates.loadgen.summary import GeneratorSummary
from gates.loadgen.sweep import step_spec

ARMS = ("baseline", "candidate")


def arm_probe(records: list[dict[str, Any]], arm: str, metric: str, warmup_s: float, end_s: float) -> ArmProbe:
    """One arm of one probe: its SLO metric in arrival order (the series the warm-up cut and the
    block bootstrap need; records are written in completion order), its error rate, and the rate
    that arrived in the measured span (what the local line is fitted on)."""
    rows = sorted(
        (r for r in records if r["arm"] == arm and warmup_s <= r["t_start_s"] < end_s), key=lambda r: r["t_start_s"]
    )
    ok = [float(r[metric]) for r in rows if r["ok"] and math.isfinite(float(r[metric]))]
    errors = sum(1 for r in rows if not r["ok"])
    span = end_s - warmup_s
    return ArmProbe(tuple(ok), errors / len(rows) if rows else 1.0, len(rows) / span if span > 0 and rows else None)


def search_record(result: SearchResult, metric: str, limit: float, order: list[Probe], per_arm: bool) -> dict[str, Any]:
    """report.json's ``capacity.search``; ``order``: the probes as they ran."""
    return {
        "metric": metric,
        "limit_ms": limit,
        "probes_per_arm": result.probes_per_arm,
        "per_arm": per_arm,
        "rates": [p.rate for p in order],
        **{
            arm: {
                "boundary": b.estimate,
                "low": b.low,
                "high": b.high,
                "cliff": b.cliff,
                "censored": b.censored,
                "rates": [p.rate_of(arm) for p in order],
                "offered": [p.arms[arm].offered for p in order],
            }
            for arm, b in (("baseline", result.baseline), ("candidate", result.candidate))
        },
        "gain_halfwidth": result.gain_halfwidth,
        "arm_correlation": result.arm_correlation,
    }


def run_capacity_search(
    config: Pipeline,
    base: LoadSpec,
    out: Path,
    check_alive: Callable[[], None],
    problem_of: Callable[[GeneratorSummary], str | None],
    progress: Callable[[str], None],
) -> Capacity:
    s, gates = config.load.capacity_search, config.gates
    assert s is not None
    slo = config.load.slo.limits()
    metric = s.slo_metric(slo)
    # a workload's conversations (and a trace's own times) go to both arms whole: one rate per window
    per_arm = base.workload is None
    plan = SearchPlan(
        limit=slo[metric],
        error_rate_max=gates.error_rate_max,
        start=s.start,
        tolerance=s.tolerance,
        max_probes=s.max_probes,
        per_arm=per_arm,
        halfwidth=s.halfwidth,
        confidence=gates.confidence,
    )
    steps: list[SweepStep] = []

    def measure(rates: Rates) -> Probe:
        i, rate = len(steps), max(rates.values())
        spec = step_spec(base, rate, i, s.duration_s, s.warmup_s)
        own = own_rates(rates)
        if own is not None:
            spec = dataclasses.replace(spec, arm_share={arm: r / rate for arm, r in own.items()})
        probe_dir = out / f"probe-{i:02d}"
        records = read_records(run_worker(spec, probe_dir, check_alive))
        arms = [summarize(records, arm, s.warmup_s, s.duration_s, slo) for arm in ARMS]
        problem = problem_of(GeneratorSummary.read(probe_dir / "summary.json"))
        steps.append(SweepStep(rate, arms[0], arms[1], problem, own))
        return Probe(rate, {arm: arm_probe(records, arm, metric, s.warmup_s, s.duration_s) for arm in ARMS}, own)

    order = run_search(measure, plan, progress)  # the probes as they ran
    result = search_result(order, plan, confidence=gates.confidence)
    cost = gates.cost.usd_per_hour if gates.cost else None
    # each arm's grid in its own rate order (its probes' rates differ from the other arm's)
    grids = {
        arm: capacity(
            "rate", sorted(steps, key=lambda st: st.value_of(arm)), slo, gates.error_rate_max, gates.confidence, cost
        )
        for arm in ARMS
    }
    arms = {
        arm: dataclasses.replace(getattr(grids[arm], arm), max_rate=b.estimate, low=b.low, high=b.high)
        for arm, b in (("baseline", result.baseline), ("candidate", result.candidate))
    }
    record = search_record(result, metric, slo[metric], order, per_arm)
    grid = grids["baseline"]
    return dataclasses.replace(
        grid,
        baseline=arms["baseline"],
        candidate=arms["candidate"],
        gain_interval=(result.gain_low, result.gain_high),
        search=record,
    )
