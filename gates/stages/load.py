"""Load: locust drives baseline and candidate interleaved in one time window."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from gates.context import RunContext
from gates.errors import InfraError
from gates.judge.adaptive import Look, plan_for
from gates.loadgen.run import run_worker
from gates.loadgen.spec import LoadSpec
from gates.loadgen.stats import read_records, summarize
from gates.loadgen.sweep import run_sweep
from gates.record import DeployResult, LoadResult, OptimizeResult, PreflightResult
from gates.triton.metrics import ModelWindow
from gates.triton.metrics import memory as server_memory
from gates.triton.metrics import parse as parse_metrics


def generator_problem(summary: dict[str, Any], max_cpu: float, max_lag_ms: float) -> str | None:
    """The self-check: was the client, not the server, the bottleneck?

    Two symptoms, from the worker's own measurements: it used (nearly) a whole core, or its event
    loop woke up late (every response it timed was then late by as much).
    """
    cpu = summary.get("generator_cpu_util")
    lag = summary.get("loop_lag_ms_p95")
    late = summary.get("arrival_lag_ms_p95")  # open loop: arrivals sent later than scheduled
    problems = []
    if cpu is not None and cpu >= max_cpu:
        problems.append(f"it used {cpu:.0%} of a CPU core (limit {max_cpu:.0%})")
    if lag is not None and lag >= max_lag_ms:
        problems.append(f"its event loop ran {lag:.0f} ms late at p95 (limit {max_lag_ms:.0f} ms)")
    if late is not None and late >= max_lag_ms:
        problems.append(f"it sent arrivals {late:.0f} ms late at p95 (limit {max_lag_ms:.0f} ms)")
    if not problems:
        return None
    return "the load generator was saturated: " + " and ".join(problems) + "; latencies include client delay"


def peak_context_prompts(model_path: Path, prompts: tuple[str, ...], max_new_tokens: int) -> tuple[str, ...]:
    """Each prompt repeated and cut to the model's maximum context minus the tokens to generate."""
    import json as _json

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path, local_files_only=True)
    config = _json.loads((model_path / "config.json").read_text())
    budget = int(config.get("max_position_embeddings", 2048)) - max_new_tokens - 1
    out = []
    for p in prompts:
        ids: list[int] = []
        piece = tokenizer(p + " ", add_special_tokens=False)["input_ids"] or [tokenizer.eos_token_id]
        while len(ids) < budget:
            ids.extend(piece)
        # decoding and re-encoding can merge tokens: trim until the prompt fits the budget
        text = tokenizer.decode(ids[:budget])
        while len(tokenizer(text)["input_ids"]) > budget:
            text = text[: int(len(text) * 0.98)]
        out.append(text)
    return tuple(out)


def _adaptive(ctx: RunContext) -> dict[str, Any]:
    cfg = ctx.config.load
    return {
        "plan": dataclasses.asdict(plan_for(ctx.config.gates, cfg.pass_error)),
        "first_look_s": cfg.first_look_s,
        "look_interval_s": cfg.look_interval_s,
    }


def looks_of(stopped: dict[str, Any]) -> tuple[Look, ...]:
    """The looks an adaptive load recorded (``load.stopped.looks``); () for a fixed one."""
    return tuple(
        Look(int(x["n_baseline"]), int(x["n_candidate"]), float(x["fraction"])) for x in stopped.get("looks") or ()
    )


class LoadStage:
    name = "load"

    def run(self, ctx: RunContext) -> None:
        pre = ctx.need(PreflightResult)
        dep = ctx.need(DeployResult)
        cfg = ctx.config.load
        golden = ctx.need(OptimizeResult).served_prompts(pre.golden)
        prompts: list[str] = []
        weights: list[float] = []
        for profile, weight in cfg.weights().items():
            chosen = golden
            if profile == "peak_context":
                chosen = peak_context_prompts(
                    ctx.need(OptimizeResult).baseline.path,
                    golden,
                    cfg.max_new_tokens_max or cfg.max_new_tokens,
                )
            prompts.extend(chosen)
            weights.extend([weight / len(chosen)] * len(chosen))
        spec = LoadSpec(
            url=dep.url,
            arms=dict(dep.models),
            prompts=tuple(prompts),
            prompt_weights=tuple(weights),
            users=cfg.users,
            spawn_rate=cfg.spawn_rate or float(cfg.users),
            duration_s=cfg.duration_s,
            max_new_tokens=cfg.max_new_tokens,
            max_new_tokens_max=cfg.max_new_tokens_max or cfg.max_new_tokens,
            timeout_s=cfg.timeout_s,
            warmup_s=cfg.warmup_s,
            min_requests=ctx.config.gates.min_requests if cfg.max_duration_s else 0,
            max_duration_s=cfg.max_duration_s,
            adaptive=_adaptive(ctx) if cfg.adaptive else None,
            mode=cfg.mode,
            rate=cfg.rate,
            arrivals=cfg.arrivals,
        )
        out = ctx.run_dir / "load"
        what = f"{cfg.users} users" if cfg.mode == "closed" else f"{cfg.arrivals} arrivals at {cfg.rate:g}/s per arm"
        ctx.progress(f"locust: {what} for {cfg.duration_s:.0f}s (first {cfg.warmup_s:.0f}s are warm-up)")
        snapshots: dict[str, dict[str, dict[str, float]]] = {}
        server = dep.server

        def tick(elapsed: float) -> None:
            if server is not None and "start" not in snapshots and elapsed >= cfg.warmup_s:
                snapshots["start"] = parse_metrics(server.metrics())

        records_path = run_worker(spec, out, dep.check_alive, tick)
        windows = memory = None
        if server is not None and "start" in snapshots:
            text = server.metrics()
            end = parse_metrics(text)
            memory = server_memory(text) or None
            windows = {
                arm: ModelWindow.between(snapshots["start"].get(name, {}), end.get(name, {}))
                for arm, name in dep.models.items()
            }
        records = read_records(records_path)
        slo = cfg.slo.limits() or None
        generator = json.loads((out / "summary.json").read_text())
        stopped = generator.get("stopped") or {"reason": "duration", "duration_s": cfg.duration_s}
        # the measured window ends when the load stopped (duration_s, or later when it went on)
        end_s = max(cfg.duration_s, float(stopped.get("duration_s") or cfg.duration_s))
        if cfg.adaptive:  # an adaptive load may settle before duration_s
            end_s = float(stopped.get("duration_s") or end_s)
        arms = {arm: summarize(records, arm, cfg.warmup_s, end_s, slo) for arm in ("baseline", "candidate")}
        problem = generator_problem(generator, cfg.generator_max_cpu, cfg.generator_max_lag_ms)
        for arm, s in arms.items():
            if s.requests == 0:
                why = f" ({problem})" if problem else ""
                raise InfraError(f"no {arm} request completed in the measured window{why}; see {out}")
        b, c = arms["baseline"], arms["candidate"]
        capacity = None
        if cfg.sweep is not None:

            def problem_of(summary: dict[str, Any]) -> str | None:
                return generator_problem(summary, cfg.generator_max_cpu, cfg.generator_max_lag_ms)

            capacity = run_sweep(ctx.config, spec, out / "sweep", dep.check_alive, problem_of, ctx.progress)
        ctx.put(
            LoadResult(
                b,
                c,
                generator,
                records_path,
                windows,
                problem,
                memory,
                stopped=stopped,
                capacity=capacity,
                note=f"stopped at {stopped.get('duration_s', 0):.0f}s ({stopped.get('reason')}"
                + (f", {len(stopped.get('looks') or [])} looks" if cfg.adaptive else "")
                + "); "
                f"baseline p95 {b.latency_ms['p95']:.1f} ms ({b.requests} req), "
                f"candidate p95 {c.latency_ms['p95']:.1f} ms ({c.requests} req)",
            ),
        )
