"""Build: package baseline and candidate for serving with the configured engine."""

from __future__ import annotations

from gates.context import RunContext
from gates.engines import ENGINES
from gates.engines.base import identify
from gates.record import BuildResult, OptimizeResult


class BuildStage:
    name = "build"

    def run(self, ctx: RunContext) -> None:
        opt = ctx.need(OptimizeResult)
        engine = ENGINES[ctx.config.engine.backend]
        # each arm is identified by the content of what it serves (its build digest), not by its
        # source model: an engine that quantizes at build serves different bytes from one checkpoint
        b = identify(engine.build(ctx.store, opt.baseline, ctx.config.engine))
        c = identify(engine.build(ctx.store, opt.candidate, ctx.config.engine))
        note = f"{engine.name}: baseline build {b.build_digest[:12]}, candidate build {c.build_digest[:12]}"
        ctx.put(BuildResult(b, c, note))
