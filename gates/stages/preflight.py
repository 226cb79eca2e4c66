"""Preflight: every input checked before any model work (data expectations, capabilities)."""

from __future__ import annotations

import dataclasses

from gates.context import RunContext
from gates.engines import ENGINES
from gates.errors import BadInputError, CapabilityError, DataError
from gates.models.sources import SMOLLM2, SMOLLM2_HINT, smollm2_file, source_problem
from gates.optimize.quantize import check_format_supported
from gates.quality.golden import GoldenPrompt, Sample, load_calibration, load_golden_suite


@dataclasses.dataclass(frozen=True)
class PreflightResult:
    golden: tuple[GoldenPrompt, ...]
    calibration: tuple[Sample, ...]  # plain texts or chats (rendered with the model's template)
    quant_path: str  # "real" | "simulated"
    note: str


def check_model_source(ctx: RunContext) -> None:
    """A checkpoint folder or GGUF file that cannot be what it claims is bad input, named by path."""
    source = ctx.config.model.source
    if source == SMOLLM2 and smollm2_file() is None:
        raise CapabilityError(f"{ctx.pipeline.where('model', 'source')}: model.source {source!r}: {SMOLLM2_HINT}")
    try:
        problem = source_problem(source, ctx.pipeline.resolve)
    except (OSError, ValueError) as exc:  # a path the OS refuses (a name too long, a NUL)
        problem = f"{exc.__class__.__name__}: {exc}"[:300]
    if problem is not None:
        raise BadInputError(f"{ctx.pipeline.where('model', 'source')}: model.source {source[:200]!r}: {problem}")


class PreflightStage:
    name = "preflight"

    def run(self, ctx: RunContext) -> None:
        cfg = ctx.config
        check_model_source(ctx)
        golden: list[GoldenPrompt] = []
        for suite in cfg.golden.suites:
            golden.extend(
                load_golden_suite(
                    ctx.pipeline.resolve(suite), suite, cfg.golden.allowed_tags, cfg.golden.max_prompt_words
                )
            )
        seen: dict[str, str] = {}
        for g in golden:  # ids are unique per suite (expectation); across suites they must be too
            key = g.row.id
            if key in seen and seen[key] != g.suite:
                raise DataError(f"{g.suite}:{g.line}: id {key!r} also appears in {seen[key]}")
            seen[key] = g.suite
        q = cfg.optimize.quantize
        calibration: list[Sample] = []
        if q is not None and q.format != "none" and q.calibration is not None:
            calibration = load_calibration(ctx.pipeline.resolve(q.calibration))
        # every other data file a recipe reads is checked here too, before any model work
        if cfg.optimize.prune is not None:
            load_calibration(ctx.pipeline.resolve(cfg.optimize.prune.calibration))
        if cfg.optimize.distill is not None:
            load_calibration(ctx.pipeline.resolve(cfg.optimize.distill.data))
        quant_path = check_format_supported(cfg.quant_format, q.kv_cache if q is not None else "none")
        ENGINES[cfg.engine.backend].check_available()
        ctx.put(
            self.name,
            PreflightResult(
                tuple(golden),
                tuple(calibration),
                quant_path,
                note=f"{len(golden)} golden prompts, {len(calibration)} calibration rows, "
                f"quantization path: {quant_path}",
            ),
        )
