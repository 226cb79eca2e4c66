"""Load: locust drives baseline and candidate interleaved in one time window."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from gates.context import RunContext
from gates.errors import InfraError
from gates.loadgen.classes import ClassFigures
from gates.loadgen.run import run_worker
from gates.loadgen.search import run_capacity_search
from gates.loadgen.spec import LoadSpec
from gates.loadgen.stats import ArmLoad, output_token_pairs, read_records, summarize
from gates.loadgen.summary import GeneratorSummary, Stopped
from gates.loadgen.sweep import run_sweep
from gates.loadmodes import LOAD_MODES, LoadMode, OperatingPoint
from gates.record import DeployResult, LoadResult, OptimizeResult, PointLoad, PreflightResult
from gates.stages.load_workload import Series, class_results, workload_spec
from gates.triton.metrics import ModelWindow
from gates.triton.metrics import memory as server_memory
from gates.triton.metrics import parse as parse_metrics


def generator_problem(summary: GeneratorSummary, max_cpu: float, max_lag_ms: float) -> str | None:
    """The self-check: was the client, not the server, the bottleneck?

    Two symptoms, from the worker's own measurements: it used (nearly) a whole core, or its event
    loop woke up late (every response it timed was then late by as much).
    """
    cpu = summary.generator_cpu_util
    lag = summary.loop_lag_ms_p95
    late = summary.arrivals.arrival_lag_ms_p95 if summary.arrivals else None  # sent later than scheduled
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
        spec = LoadSpec.from_config(ctx.config, dep.url, dep.models, prompts, weights)
        out = ctx.run_dir / "load"
        if cfg.workloads:  # the workload's conversations replace the prompt mix
            kinds = ", ".join(w.kind.value for w in cfg.workloads)
            ctx.progress(f"workload {kinds}: building the conversations")
            model = ctx.need(OptimizeResult).baseline.path
            spec = workload_spec(ctx.config, spec, out, ctx.pipeline.resolve, model)
        points = cfg.operating_points
        one_user = spec.mode == str(LoadMode.closed) and spec.users == 1
        # one request in flight per arm: a closed loop of one user (pairs are sent one after the other)
        alone = dataclasses.replace(spec, users=1, spawn_rate=1.0, mode=str(LoadMode.closed), rate=None, adaptive=None)
        latency_point = None
        if OperatingPoint.latency in points and OperatingPoint.throughput in points and not one_user:
            ctx.progress("operating point `latency`: one request in flight per arm")
            lw = measure(ctx, alone, out / "latency", dep)
            b, c = lw.arms["baseline"], lw.arms["candidate"]
            latency_point = PointLoad(
                "latency",
                1,
                None,
                b,
                c,
                lw.windows,
                lw.records_path,
                lw.stopped,
                lw.generator,
                lw.problem,
                lw.output_pairs,
                lw.classes,
                lw.class_series,
            )
        if OperatingPoint.throughput in points:
            ctx.progress("operating point `throughput`")
        w = measure(ctx, spec if OperatingPoint.throughput in points else alone, out, dep)
        arms, windows, memory, generator, stopped, problem = (
            w.arms,
            w.windows,
            w.memory,
            w.generator,
            w.stopped,
            w.problem,
        )
        records_path = w.records_path
        b, c = arms["baseline"], arms["candidate"]
        capacity = None
        if cfg.sweep is not None:

            def problem_of(summary: GeneratorSummary) -> str | None:
                return generator_problem(summary, cfg.generator_max_cpu, cfg.generator_max_lag_ms)

            capacity = run_sweep(ctx.config, spec, out / "sweep", dep.check_alive, problem_of, ctx.progress)
        if cfg.capacity_search is not None:

            def problem_in(summary: GeneratorSummary) -> str | None:
                return generator_problem(summary, cfg.generator_max_cpu, cfg.generator_max_lag_ms)

            search_out = out / "capacity-search"
            capacity = run_capacity_search(ctx.config, spec, search_out, dep.check_alive, problem_in, ctx.progress)
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
                latency_point=latency_point,
                output_pairs=w.output_pairs,
                classes=w.classes,
                class_series=w.class_series,
                note=f"stopped at {stopped.duration_s:.0f}s ({stopped.reason}"
                + (f", {len(stopped.looks or ())} looks" if cfg.adaptive else "")
                + "); "
                f"baseline p95 {b.latency_ms['p95']:.1f} ms ({b.requests} req), "
                f"candidate p95 {c.latency_ms['p95']:.1f} ms ({c.requests} req)",
            ),
        )


@dataclasses.dataclass(frozen=True)
class Window:
    """One paired load window: both arms' figures, Triton's per-model counters, the generator's summary."""

    arms: dict[str, ArmLoad]
    windows: dict[str, ModelWindow] | None
    memory: dict[str, float] | None
    generator: GeneratorSummary
    stopped: Stopped
    problem: str | None
    records_path: Path
    output_pairs: tuple[tuple[int, int], ...]  # (baseline, candidate) output tokens of each measured pair
    classes: tuple[ClassFigures, ...] = ()  # load.workload's request classes
    class_series: Series = dataclasses.field(default_factory=dict)  # samples of the gates scoped by `where`


def measure(ctx: RunContext, spec: LoadSpec, out: Path, dep: DeployResult) -> Window:
    """Run locust on ``spec`` and read both arms' figures from its records and Triton's metrics."""
    cfg = ctx.config.load
    what = LOAD_MODES[spec.mode].describe(spec)
    if spec.workload is not None and spec.mode == LoadMode.open and spec.rate is None:
        what = "a trace replayed at its own times"
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
    for arm, window in (windows or {}).items():
        if window.engine_healthy is False:  # the arm's requests failed for the server's sake, not the model's
            raise InfraError(
                f"the {arm} model's engine scheduler died or stalled during the load (see "
                f"{dep.server.log_path if dep.server else 'the server log'}); nothing is judged on this window"
            )
    records = read_records(records_path)
    slo = cfg.slo.limits() or None
    generator = GeneratorSummary.read(out / "summary.json")
    stopped = generator.stopped or Stopped("duration", cfg.duration_s)
    # the measured window ends when the load stopped (duration_s, or later when it went on)
    end_s = max(cfg.duration_s, stopped.duration_s or cfg.duration_s)
    if spec.adaptive:  # an adaptive load may settle before duration_s
        end_s = stopped.duration_s or end_s
    arms = {
        arm: summarize(records, arm, cfg.warmup_s, end_s, slo, cfg.goodput_tiers) for arm in ("baseline", "candidate")
    }
    problem = generator_problem(generator, cfg.generator_max_cpu, cfg.generator_max_lag_ms)
    for arm, s in arms.items():
        if s.requests == 0:
            why = f" ({problem})" if problem else ""
            raise InfraError(f"no {arm} request completed in the measured window{why}; see {out}")
    pairs = output_token_pairs(records, cfg.warmup_s)
    classes, class_series = class_results(ctx.config, records, cfg.warmup_s, end_s)
    return Window(arms, windows, memory, generator, stopped, problem, records_path, pairs, classes, class_series)
