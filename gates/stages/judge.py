"""Judge: evidence from the measurement stages, thresholds from the config, to a verdict."""

from __future__ import annotations

from gates.context import RunContext
from gates.judge.decide import shown_quality, verdict_of
from gates.judge.policy import Evidence
from gates.judge.quality_gates import quality_entries
from gates.judge.stall import find_stall
from gates.loadgen.stats import read_records
from gates.loadgen.summary import GeneratorSummary
from gates.record import BuildResult, DriftResult, LoadResult, QualityResult, QualityVerdicts


def _generator_summary(g: GeneratorSummary) -> str:
    cpu, lag = g.generator_cpu_util, g.loop_lag_ms_p95
    parts = []
    if cpu is not None:
        parts.append(f"client CPU {cpu:.0%} of a core")
    if lag is not None:
        parts.append(f"event-loop lag p95 {lag:.1f} ms")
    return "the generator kept up: " + ", ".join(parts) if parts else "the generator kept up"


def gather_evidence(ctx: RunContext) -> Evidence:
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
