"""Build: package baseline and candidate for serving with the configured engine."""

from __future__ import annotations

from gates.context import RunContext
from gates.engines import ENGINES
from gates.record import BuildResult, OptimizeResult


class BuildStage:
    name = "build"

    def run(self, ctx: RunContext) -> None:
        opt = ctx.need(OptimizeResult)
        engine = ENGINES[ctx.config.engine.backend]
        b = engine.build(ctx.store, opt.baseline, ctx.config.engine)
        c = engine.build(ctx.store, opt.candidate, ctx.config.engine)
        ctx.put(BuildResult(b, c, f"{engine.name}: baseline {b.digest[:12]}, candidate {c.digest[:12]}"))
