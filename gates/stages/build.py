"""Build: package baseline and candidate for serving with the configured engine."""

from __future__ import annotations

import dataclasses

from gates.context import RunContext
from gates.engines import ENGINES, EngineBuild
from gates.stages.optimize import OptimizeResult


@dataclasses.dataclass(frozen=True)
class BuildResult:
    baseline: EngineBuild
    candidate: EngineBuild
    note: str


class BuildStage:
    name = "build"

    def run(self, ctx: RunContext) -> None:
        opt = ctx.need("optimize", OptimizeResult)
        engine = ENGINES[ctx.config.engine.backend]
        b = engine.build(ctx.store, opt.baseline, ctx.config.engine)
        c = engine.build(ctx.store, opt.candidate, ctx.config.engine)
        ctx.put(self.name, BuildResult(b, c, f"{engine.name}: baseline {b.digest[:12]}, candidate {c.digest[:12]}"))
