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


@dataclasses.dataclass(frozen=True)
class LoadResult:
    baseline: ArmLoad
    candidate: ArmLoad
    generator: dict[str, Any]
    records_path: Path
    note: str


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
        records_path = run_worker(spec, out, dep.check_alive)
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
                note=f"baseline p95 {b.latency_ms['p95']:.1f} ms ({b.requests} req), "
                f"candidate p95 {c.latency_ms['p95']:.1f} ms ({c.requests} req)",
            ),
        )
