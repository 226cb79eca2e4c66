"""Judge: evidence from the measurement stages, thresholds from the config, to a verdict."""

from __future__ import annotations

import dataclasses

from gates.config.engine import Batching
from gates.context import RunContext
from gates.judge.decide import shown_quality, verdict_of
from gates.judge.points import ArmBatches, PointEvidence
from gates.judge.policy import Evidence
from gates.judge.quality_gates import quality_entries
from gates.judge.stall import find_stall
from gates.loadgen.stats import read_records
from gates.loadgen.summary import GeneratorSummary
from gates.loadmodes import LoadMode, OperatingPoint
from gates.record import BuildResult, DriftResult, LoadResult, QualityResult, QualityVerdicts
from gates.triton.metrics import ModelWindow


def _generator_summary(g: GeneratorSummary) -> str:
    cpu, lag = g.generator_cpu_util, g.loop_lag_ms_p95
    parts = []
    if cpu is not None:
        parts.append(f"client CPU {cpu:.0%} of a core")
    if lag is not None:
        parts.append(f"event-loop lag p95 {lag:.1f} ms")
    return "the generator kept up: " + ", ".join(parts) if parts else "the generator kept up"


def _arm_batches(server: dict[str, ModelWindow] | None) -> dict[str, ArmBatches] | None:
    if not server or any(w.engine_busy_s is None for w in server.values()):
        return None  # no engine metrics: an existing Triton, or a model that reports none
    return {arm: ArmBatches(w.batch_size_mean, w.batch_size_max, w.max_batch) for arm, w in server.items()}


def point_evidence(ctx: RunContext, main: Evidence) -> PointEvidence:
    """The latency point's evidence (the main window's, on its own records), the throughput point's
    batch sizes and the golden prompts' output lengths."""
    load, drift, cfg = ctx.get(LoadResult), ctx.get(DriftResult), ctx.config
    latency = None
    if load is not None and load.latency_point is not None:
        lp = load.latency_point
        failures = (lp.server["baseline"].failure, lp.server["candidate"].failure) if lp.server else None
        latency = dataclasses.replace(
            main,
            series={
                "latency_ms": (lp.baseline.samples_ms, lp.candidate.samples_ms),
                "output_tokens_per_s": (lp.baseline.tokens_per_s_samples, lp.candidate.tokens_per_s_samples),
                "ttft_ms": (lp.baseline.ttft_samples_ms, lp.candidate.ttft_samples_ms),
                "itl_ms": (lp.baseline.itl_samples_ms, lp.candidate.itl_samples_ms),
                **lp.class_series,  # gates scoped to a request class (gates.metrics[].where)
            },
            baseline_error_rate=lp.baseline.error_rate,
            candidate_error_rate=lp.candidate.error_rate,
            candidate_requests=lp.candidate.requests,
            baseline_tokens_per_s=lp.capacity_tokens_per_s("baseline"),
            candidate_tokens_per_s=lp.capacity_tokens_per_s("candidate"),
            server_failures=failures,
            generator_problem=lp.generator_problem,  # the latency window's own worker, not the main one's
            generator_summary=_generator_summary(lp.generator) if lp.generator else main.generator_summary,
            looks=(),
            points=None,
        )
    concurrent = cfg.load.mode != LoadMode.closed or cfg.load.users > 1
    # output lengths of the requests whose latency is judged (each pair: one prompt to both arms);
    # without a load, of the golden prompts' greedy answers
    lengths: tuple[tuple[int, int], ...] = ()
    if load is not None:  # counted by the load stage from the records it read
        lengths = load.output_pairs + (load.latency_point.output_pairs if load.latency_point else ())
    elif drift is not None:
        lengths = tuple((r.positions, r.candidate_tokens) for r in drift.rows if r.temperature is None)
    return PointEvidence(
        latency=latency,
        batches=_arm_batches(load.server) if load else None,
        concurrent=concurrent and OperatingPoint.throughput in cfg.load.operating_points,
        batching_off=cfg.serve.batching == Batching.OFF,
        output_tokens=lengths,
    )


def gather_evidence(ctx: RunContext) -> Evidence:
    main = _main_evidence(ctx)
    return dataclasses.replace(main, points=point_evidence(ctx, main))


def _main_evidence(ctx: RunContext) -> Evidence:
    load = ctx.get(LoadResult)
    drift = ctx.get(DriftResult)
    build = ctx.get(BuildResult)
    simulated = build is not None and not build.candidate.latency_representative
    series = {}
    stall = None
    if load and load.records_path.is_file():
        found = find_stall(read_records(load.records_path))
        stall = found.describe() if found else None
    if load:
        series["latency_ms"] = (load.baseline.samples_ms, load.candidate.samples_ms)
        series["output_tokens_per_s"] = (load.baseline.tokens_per_s_samples, load.candidate.tokens_per_s_samples)
        series["ttft_ms"] = (load.baseline.ttft_samples_ms, load.candidate.ttft_samples_ms)
        series["itl_ms"] = (load.baseline.itl_samples_ms, load.candidate.itl_samples_ms)
        series.update(load.class_series)  # gates scoped to a request class (gates.metrics[].where)
    return Evidence(
        series=series,
        baseline_error_rate=load.baseline.error_rate if load else None,
        candidate_error_rate=load.candidate.error_rate if load else None,
        candidate_requests=load.candidate.requests if load else 0,
        exact_match_rate=drift.summary.exact_match_rate if drift else None,
        top1_agreement=drift.summary.top1_agreement if drift else None,
        mean_kl=drift.summary.mean_kl if drift else None,
        kl_top_k=drift.summary.top_k if drift else 0,
        mean_kl_full=drift.summary.mean_kl_full if drift else None,
        golden_prompts=drift.summary.prompts if drift else 0,
        latency_simulated=simulated,
        simulated_reason=build.candidate.latency_note if build and simulated else "",
        baseline_tokens_per_s=load.capacity_tokens_per_s("baseline") if load else None,
        candidate_tokens_per_s=load.capacity_tokens_per_s("candidate") if load else None,
        generator_problem=load.generator_problem if load else None,
        server_failures=(
            (load.server["baseline"].failure, load.server["candidate"].failure) if load and load.server else None
        ),
        generator_summary=_generator_summary(load.generator) if load else "",
        server_stall=stall,
        looks=(load.stopped.looks or ()) if load else (),
    )


class JudgeStage:
    name = "judge"

    def run(self, ctx: RunContext) -> None:
        cfg = ctx.config.gates
        entries = quality_entries(ctx.get(DriftResult), ctx.get(QualityResult), cfg)
        load = ctx.get(LoadResult)
        verdict = verdict_of(gather_evidence(ctx), entries, load.capacity if load else None, cfg)
        ctx.put(QualityVerdicts(shown_quality(entries, cfg)))
        ctx.put(verdict)
