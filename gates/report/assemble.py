"""report.json: the contract every consumer (PR comment, HTML, later tooling) reads."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

from gates.artifacts import tool_versions
from gates.config.schema import Pipeline
from gates.context import RunContext
from gates.judge.cost import compare
from gates.judge.paired import two_sided
from gates.judge.points import LATENCY_SUFFIX
from gates.judge.verdict import Verdict
from gates.loadmodes import LOAD_MODES, LoadMode, OperatingPoint
from gates.machine import machine_info
from gates.quality.drift import PromptDrift
from gates.record import (
    BuildResult,
    DriftResult,
    LoadResult,
    OptimizeResult,
    PreflightResult,
    QualityResult,
    QualityVerdicts,
)
from gates.report.model import SCHEMA_VERSION  # the model (and report.schema.json) say what each key holds
from gates.triton.metrics import ModelWindow

REGRESSED_SHOWN = 50  # task checks that regressed, listed in report.json drift.worst (the rest: drift.rows)


def shown_prompts(rows: Sequence[PromptDrift], worst: int) -> list[PromptDrift]:
    """report.json's ``drift.worst``: every task check that regressed (baseline right, candidate
    wrong) first, whatever its KL, since a wrong answer is what a reviewer must see (it hid past the
    worst 5), then the ``worst`` prompts by exact match and KL."""
    ranked = sorted(rows, key=lambda r: (r.exact_match, -(r.mean_kl if math.isfinite(r.mean_kl) else 1e9)))
    regressed = [r for r in ranked if r.baseline_task_pass is True and r.candidate_task_pass is False]
    regressed = regressed[:REGRESSED_SHOWN]
    rest = [r for r in ranked if all(r is not x for x in regressed)]
    return regressed + rest[: max(0, worst - len(regressed))]


def _clean(obj: Any) -> Any:
    """JSON-safe: NaN/inf become null (a missing value must read as missing, not as a number)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def _links(env: dict[str, str]) -> dict[str, str]:
    """Where a reviewer finds more, when the environment says (GitHub Actions sets these)."""
    links = {}
    if env.get("GITHUB_SERVER_URL") and env.get("GITHUB_REPOSITORY") and env.get("GITHUB_RUN_ID"):
        links["workflow_run"] = (
            f"{env['GITHUB_SERVER_URL'].rstrip('/')}/{env['GITHUB_REPOSITORY']}/actions/runs/{env['GITHUB_RUN_ID']}"
        )
    if env.get("GATES_REPORT_URL"):
        links["html_report"] = env["GATES_REPORT_URL"]
    return links


def _recipe(opt: OptimizeResult | None, build: BuildResult | None) -> str | None:
    """The candidate's recipe: optimization steps, then what the engine did (its own quantization)."""
    if opt is None:
        return None
    parts = [opt.candidate.format] if opt.candidate.format != "none" or not (build and build.candidate.recipe) else []
    if build is not None and build.candidate.recipe:
        parts.append(build.candidate.recipe)
    return " + ".join(parts)


def _quantization(ctx: RunContext, build: BuildResult | None, pre: PreflightResult | None) -> dict[str, Any]:
    """What was done to the candidate's weights, and by whom: the engine's own quantization when it
    quantized at build (onnxruntime-genai), else Model Optimizer's (``optimize.quantize``)."""
    cfg = ctx.config
    kv_cache = cfg.optimize.quantize.kv_cache if cfg.optimize.quantize else "none"
    if build is not None and build.candidate.quantization:
        return {**build.candidate.quantization, "path": "real", "kv_cache": kv_cache}
    return {
        "format": cfg.quant_format,
        "by": "nvidia-modelopt" if cfg.optimize.quantize else None,
        "path": pre.quant_path if pre else None,
        "kv_cache": kv_cache,
    }


def build_report(ctx: RunContext) -> dict[str, Any]:
    verdict = ctx.need(Verdict)
    opt = ctx.get(OptimizeResult)
    build = ctx.get(BuildResult)
    load = ctx.get(LoadResult)
    drift = ctx.get(DriftResult)
    pre = ctx.get(PreflightResult)
    cfg = ctx.config
    report: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "verdict": verdict.verdict,
        "reason": verdict.reason,
        "pipeline": cfg.name,
        "config_path": str(ctx.pipeline.path),
        "run_id": ctx.run_id,
        "error": ctx.record.error,
        "model_source": cfg.model.source,
        "quantization": _quantization(ctx, build, pre),
        "engine": {
            "backend": cfg.engine.backend,
            "latency_representative": build.candidate.latency_representative if build else None,
            "latency_note": build.candidate.latency_note if build else None,
            "kernels": {"baseline": build.baseline.latency_note, "candidate": build.candidate.latency_note}
            if build
            else None,
        },
        # digest: the model artifact; build_digest: what the engine built from it and Triton served
        # (the candidate's identity: the ledger records it and promotion checks the canary against it)
        "baseline": {
            "digest": opt.baseline.digest if opt else None,
            "path": str(opt.baseline.path) if opt else None,
            "build_digest": (build.baseline.build_digest or None) if build else None,
            "build_path": str(build.baseline.serve_path) if build else None,
        },
        "candidate": {
            "digest": opt.candidate.digest if opt else None,
            "path": str(opt.candidate.path) if opt else None,
            "build_digest": (build.candidate.build_digest or None) if build else None,
            "build_path": str(build.candidate.serve_path) if build else None,
            "reused": opt.reused if opt else None,
            "recipe": _recipe(opt, build),
            "steps": list(opt.steps) if opt else [],
        },
        "load": None,
        "drift": None,
        "gates": [g.to_json() for g in verdict.gates],
        "durations_s": dict(ctx.durations_s),
        "links": _links(ctx.env),
        "tools": tool_versions(),
        "machine": machine_info(),
    }
    if load:
        report["load"] = {
            "baseline": load.baseline.to_json(),
            "candidate": load.candidate.to_json(),
            "users": cfg.load.users,
            "duration_s": cfg.load.duration_s,
            "stopped": load.stopped.to_json(),
            "warmup_s": cfg.load.warmup_s,
            "generator": load.generator.to_json(),
            "records": str(load.records_path),
            "mode": str(cfg.load.mode),
            "rate": cfg.load.rate,
            "arrivals": LOAD_MODES[cfg.load.mode].report_arrivals(cfg.load.arrivals),
        }
    report["cost"] = None
    report["capacity"] = load.capacity.to_json() if load and load.capacity else None
    if load:
        report["load"]["server"] = {a: _window(w) for a, w in (load.server or {}).items()} or None
        for arm in ("baseline", "candidate"):
            report["load"][arm].update(_arm_extras(report["load"][arm], (load.server or {}).get(arm)))
        report["load"]["operating_points"] = _points(load, verdict, cfg, report["load"])
        if cfg.load.workloads:
            report["load"]["workloads"] = [w.kind.value for w in cfg.load.workloads]
            report["load"]["classes"] = [c.to_json() for c in load.classes]
        report["serve"] = {
            "batching": cfg.serve.batching.value,
            "max_batch": cfg.serve.max_batch,
            "kv_cache_gb": cfg.serve.kv_cache_gb,
            "engine_max_batch": {a: w.max_batch for a, w in (load.server or {}).items()},
        }
        report["load"]["server_memory"] = load.server_memory
        b_cap, c_cap = load.capacity_tokens_per_s("baseline"), load.capacity_tokens_per_s("candidate")
        report["load"]["capacity_tokens_per_s"] = {"baseline": b_cap, "candidate": c_cap}
        if cfg.gates.cost is not None and b_cap and c_cap:
            c = compare(cfg.gates.cost.usd_per_hour, b_cap, c_cap)
            report["cost"] = {
                "usd_per_hour": cfg.gates.cost.usd_per_hour,
                "baseline_tokens_per_s": b_cap,
                "candidate_tokens_per_s": c_cap,
                **dataclasses.asdict(c),
            }
    if drift:
        s = drift.summary
        report["drift"] = {
            **dataclasses.asdict(s),
            "worst": [dataclasses.asdict(r) for r in shown_prompts(drift.rows, cfg.golden.worst)],
            "per_prompt": [
                {"id": r.id, "mean_kl": r.mean_kl, "top1_agreement": r.top1_agreement, "exact_match": r.exact_match}
                for r in drift.rows
            ],
            "rows": str(drift.path),
            "kl_note": s.kl_note,  # mean_kl is a lower bound over the top-k tokens; mean_kl_full when measured
            "batched": {a: dataclasses.asdict(b) for a, b in drift.batched.items()} if drift.batched else None,
        }
    qv = ctx.get(QualityVerdicts)
    report["quality"] = [e.to_json() for e in qv.entries] if qv else []
    report["confidence_level"] = two_sided(cfg.gates.confidence)  # of every quality interval shown
    report["quality_warnings"] = list(pre.warnings) if pre else []
    quality = ctx.get(QualityResult)
    report["corpus"] = quality.corpus.to_json() if quality is not None and quality.corpus is not None else None
    return dict(_clean(report))


def _window(w: ModelWindow) -> dict[str, Any]:
    d = dataclasses.asdict(w)
    d["steps_by_size"] = {str(k): v for k, v in sorted(w.steps_by_size.items())}
    return d


def _arm_extras(arm: dict[str, Any], window: ModelWindow | None) -> dict[str, Any]:
    """Batch sizes and Triton's queue time of the arm's model; latency per output token."""
    latency = (arm.get("latency_ms") or {}).get("mean")
    tokens_per_request = None
    ok = arm["requests"] - arm["errors"]
    if ok > 0 and arm.get("output_tokens_per_s") is not None and arm.get("window_s"):
        tokens_per_request = arm["output_tokens_per_s"] * arm["window_s"] / ok
    return {
        "batch_size_mean": window.batch_size_mean if window else None,
        "batch_size_max": window.batch_size_max if window else None,
        "queue_ms_mean": window.queue_ms_mean if window else None,
        "ms_per_output_token": latency / tokens_per_request if latency is not None and tokens_per_request else None,
    }


def _points(load: LoadResult, verdict: Verdict, cfg: Pipeline, main_load: dict[str, Any]) -> list[dict[str, Any]]:
    """load.operating_points: each window with both arms' figures and the latency and cost gates
    judged on it (the main window also carries the load's other gates: errors, batching, …)."""
    latency_gates = [g.name for g in verdict.gates if g.name.endswith(LATENCY_SUFFIX)]
    per_point = {f"{m.series_key} shift" for m in cfg.gates.metrics} | {"latency_p95_ratio", "latency_p99_ratio"}
    per_point |= {"cost_saving", "batching", "error_rate", "server_failures", "load_generator", "score"}
    main_gates = [g.name for g in verdict.gates if g.name in per_point]
    out = []
    lp = load.latency_point
    if lp is not None:
        arms = {a: {**getattr(lp, a).to_json()} for a in ("baseline", "candidate")}
        for a in arms:
            arms[a].update(_arm_extras(arms[a], (lp.server or {}).get(a)))
        out.append({"name": "latency", "concurrency": 1, "rate": None, **arms, "gates": latency_gates})
    points = cfg.load.operating_points
    name = "throughput" if OperatingPoint.throughput in points else "latency"
    closed = cfg.load.mode == LoadMode.closed or name == "latency"
    main = {
        "name": name,
        "concurrency": (cfg.load.users if name == "throughput" else 1) if closed else None,
        "rate": cfg.load.rate if not closed else None,
        "baseline": main_load["baseline"],
        "candidate": main_load["candidate"],
        "gates": main_gates,
    }
    out.append(main)
    return out
