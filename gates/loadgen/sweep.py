"""The sweep of the load stage: steps of rate or concurrency after the main window, then capacity."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from gates.config.schema import Pipeline
from gates.loadgen.capacity import Capacity, SweepStep, capacity, check_step
from gates.loadgen.run import run_worker
from gates.loadgen.spec import LoadSpec
from gates.loadgen.stats import read_records, summarize
from gates.loadgen.summary import GeneratorSummary
from gates.loadmodes import LOAD_MODES


def step_spec(base: LoadSpec, value: float, index: int, duration_s: float, warmup_s: float) -> LoadSpec:
    """The main window's spec at one sweep step: its own duration and warm-up, no extension; the
    load mode says what ``value`` sets (users, rate)."""
    setting = LOAD_MODES[base.mode].sweep_step(base, value)
    return dataclasses.replace(
        base,
        duration_s=duration_s,
        warmup_s=warmup_s,
        min_requests=0,
        max_duration_s=None,
        seed=base.seed + index + 1,
        **setting,
    )


def run_sweep(
    config: Pipeline,
    base: LoadSpec,
    out: Path,
    check_alive: Callable[[], None],
    problem_of: Callable[[GeneratorSummary], str | None],
    progress: Callable[[str], None],
) -> Capacity:
    """Every step interleaves both arms in one window (as the main window does), so the two arms
    of a step are paired in time; the sweep stops early once both arms missed the SLO."""
    sweep, load, gates = config.load.sweep, config.load, config.gates
    assert sweep is not None
    slo = load.slo.limits()
    steps: list[SweepStep] = []
    unit = LOAD_MODES[base.mode].sweep_unit
    for i, value in enumerate(sweep.values):
        spec = step_spec(base, value, i, sweep.duration_s, sweep.warmup_s)
        progress(f"sweep step {i + 1}/{len(sweep.values)}: {value:g} {unit} for {sweep.duration_s:g}s")
        step_dir = out / f"step-{i:02d}"
        records = read_records(run_worker(spec, step_dir, check_alive))
        generator = GeneratorSummary.read(step_dir / "summary.json")
        arms = [summarize(records, arm, sweep.warmup_s, sweep.duration_s, slo) for arm in ("baseline", "candidate")]
        step = SweepStep(value, arms[0], arms[1], problem_of(generator))
        steps.append(step)
        checks = [check_step(a, slo, gates.error_rate_max, gates.confidence, step.generator_problem) for a in arms]
        progress(
            f"  baseline p95 {arms[0].latency_ms['p95']:.0f} ms {arms[0].rps:.2f} req/s ({checks[0].status}), "
            f"candidate p95 {arms[1].latency_ms['p95']:.0f} ms {arms[1].rps:.2f} req/s ({checks[1].status})"
        )
        if sweep.stop_when_both_fail and not any(c.passes for c in checks):
            break
    cost = gates.cost.usd_per_hour if gates.cost else None
    return capacity(sweep.over, steps, slo, gates.error_rate_max, gates.confidence, cost)
