"""Load: locust drives baseline and candidate interleaved in one time window."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from gates.context import RunContext
from gates.errors import InfraError
from gates.loadgen.run import run_worker
from gates.loadgen.spec import LoadSpec
from gates.loadgen.stats import ArmLoad, read_records, summarize
from gates.stages.deploy import DeployResult
from gates.stages.preflight import PreflightResult
from gates.triton.metrics import ModelWindow
from gates.triton.metrics import parse as parse_metrics


@dataclasses.dataclass(frozen=True)
class LoadResult:
    baseline: ArmLoad
    candidate: ArmLoad
    generator: dict[str, Any]
    records_path: Path
    server: dict[str, ModelWindow] | None  # per arm, from Triton's metrics (local server only)
    note: str

    def capacity_tokens_per_s(self, arm: str) -> float | None:
        """Output tokens per second of model busy time: what one instance of the arm can sustain.

        Arms are interleaved in pairs, so both get the same request rate whatever their speed;
        their client-side throughput cannot be compared, their busy time can.
        """
        window = (self.server or {}).get(arm)
        load = self.baseline if arm == "baseline" else self.candidate
        if window is None or window.compute_s <= 0 or window.success <= 0:
            return None
        tokens_per_request = load.output_tokens_per_s * load.window_s / max(load.requests - load.errors, 1)
        return tokens_per_request * window.success / window.compute_s


class LoadStage:
    name = "load"

    def run(self, ctx: RunContext) -> None:
        pre = ctx.need("preflight", PreflightResult)
        dep = ctx.need("deploy", DeployResult)
        cfg = ctx.config.load
        spec = LoadSpec(
            url=dep.url,
            arms=dict(dep.models),
            prompts=tuple(g.row.prompt for g in pre.golden),
            users=cfg.users,
            spawn_rate=cfg.spawn_rate or float(cfg.users),
            duration_s=cfg.duration_s,
            max_new_tokens=cfg.max_new_tokens,
            timeout_s=cfg.timeout_s,
        )
        out = ctx.run_dir / "load"
        ctx.progress(f"locust: {cfg.users} users for {cfg.duration_s:.0f}s (first {cfg.warmup_s:.0f}s are warm-up)")
        snapshots: dict[str, dict[str, dict[str, float]]] = {}
        server = dep.server

        def tick(elapsed: float) -> None:
            if server is not None and "start" not in snapshots and elapsed >= cfg.warmup_s:
                snapshots["start"] = parse_metrics(server.metrics())

        records_path = run_worker(spec, out, dep.check_alive, tick)
        windows = None
        if server is not None and "start" in snapshots:
            end = parse_metrics(server.metrics())
            windows = {
                arm: ModelWindow.between(snapshots["start"].get(name, {}), end.get(name, {}))
                for arm, name in dep.models.items()
            }
        records = read_records(records_path)
        arms = {arm: summarize(records, arm, cfg.warmup_s, cfg.duration_s) for arm in ("baseline", "candidate")}
        generator = json.loads((out / "summary.json").read_text())
        for arm, s in arms.items():
            if s.requests == 0:
                raise InfraError(f"no {arm} request completed in the measured window; see {out}")
        b, c = arms["baseline"], arms["candidate"]
        ctx.put(
            self.name,
            LoadResult(
                b,
                c,
                generator,
                records_path,
                windows,
                note=f"baseline p95 {b.latency_ms['p95']:.1f} ms ({b.requests} req), "
                f"candidate p95 {c.latency_ms['p95']:.1f} ms ({c.requests} req)",
            ),
        )
