"""Preflight: every input checked before any model work (data expectations, capabilities)."""

from __future__ import annotations

import os

from gates.context import RunContext
from gates.engines import engine_for
from gates.errors import BadInputError, CapabilityError, DataError
from gates.judge.paired import detectable_effect, items_for_effect
from gates.models.placement import cuda_available
from gates.models.sources import SMOLLM2, SMOLLM2_HINT, smollm2_file, source_problem
from gates.optimize.quantize import check_format_supported
from gates.quality.corpus import load_corpus
from gates.quality.golden import GoldenPrompt, Sample, load_calibration, load_golden_suite
from gates.quality.lm_eval_tasks import lm_eval_available, task_spec
from gates.quality.scoring import load_documents, load_multiple_choice
from gates.record import PreflightResult
from gates.stages.estimate import estimate_points, store_reports
from gates.workloads import WORKLOADS

# Baseline accuracy assumed when sizing suites before any model ran (the report recomputes
# the detectable effect with the measured one).
ASSUMED_ACCURACY = 0.8


def suite_size_warnings(
    sizes: dict[str, int],
    margin: float | None,
    confidence: float,
    power: float,
    repeats: dict[str, int] | None = None,
) -> list[str]:
    """A suite too small to tell a drop of ``margin`` from none can only be INCONCLUSIVE (or
    pass an A/A-like candidate by luck of the bounds): say so before spending minutes on it.

    ``repeats``: the fewest draws per sampled item of a suite (sampled rows): a pass rate over R
    draws varies between p(1-p)/R (items equally hard) and p(1-p) (each item all or nothing), so
    the warning uses the latter and states the range."""
    if margin is None:
        return []
    out = []
    for label, n in sizes.items():
        mde = detectable_effect(n, ASSUMED_ACCURACY, confidence, power)
        if n and mde > margin:
            need = items_for_effect(margin, ASSUMED_ACCURACY, confidence, power)
            text = (
                f"{label}: {n} items detect accuracy drops of {mde:.3f} with {power:.0%} power "
                f"(at baseline accuracy {ASSUMED_ACCURACY}); gates.accuracy_drop_max {margin:.3g} needs about "
                f"{need} items, so unless the arms agree on nearly every item this gate will be inconclusive"
            )
            r = (repeats or {}).get(label, 1)
            if r > 1:
                low_var = ASSUMED_ACCURACY * (1 - ASSUMED_ACCURACY) / r
                best = detectable_effect(n, ASSUMED_ACCURACY, confidence, power, low_var)
                fewest = items_for_effect(margin, ASSUMED_ACCURACY, confidence, power, low_var)
                text += (
                    f" (sampled rows, {r} draws each: {best:.3f} and {fewest} items if every item is "
                    "equally hard; the figures above if each item is all or nothing)"
                )
            out.append(text)
    return out


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


def check_placement(ctx: RunContext) -> None:
    """``engine.device: cuda`` where no CUDA device is visible is refused naming the key; on CUDA,
    Model Optimizer's CUDA extensions are compiled once into a cache under the artifacts
    directory (``TORCH_EXTENSIONS_DIR``; 45 s each otherwise, every run)."""
    engine = ctx.config.engine
    cuda = cuda_available()
    if engine.device == "cuda" and not cuda:
        raise CapabilityError(
            f"{ctx.pipeline.where('engine', 'device')}: engine.device is cuda, but no CUDA device is visible here "
            "(torch.cuda.is_available() is False); run on a GPU runner or set engine.device: auto"
        )
    if engine.placement(cuda)[0] == "cuda":
        os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(ctx.store.root / "torch_extensions"))


class PreflightStage:
    name = "preflight"

    def run(self, ctx: RunContext) -> None:
        cfg = ctx.config
        engine = engine_for(ctx.pipeline)  # the engine's own rules first: a config error before any work
        check_model_source(ctx)
        validated = ctx.store.root / "validated"  # passing expectation checks, not run twice
        golden: list[GoldenPrompt] = []
        for suite in cfg.golden.suites:
            path = ctx.pipeline.resolve(suite)
            golden.extend(
                load_golden_suite(path, suite, cfg.golden.allowed_tags, cfg.golden.max_prompt_words, validated)
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
            calibration = load_calibration(ctx.pipeline.resolve(q.calibration), validated)
        # every other data file a recipe reads is checked here too, before any model work
        if cfg.optimize.prune is not None:
            load_calibration(ctx.pipeline.resolve(cfg.optimize.prune.calibration), validated)
        if cfg.optimize.distill is not None:
            load_calibration(ctx.pipeline.resolve(cfg.optimize.distill.data), validated)
        for wl in cfg.load.workloads:  # a bad trace or conversation file: exit 2 before any model work
            WORKLOADS[wl.kind].validate(wl, ctx.pipeline.resolve)
        choices = [c for f in cfg.golden.multiple_choice for c in load_multiple_choice(ctx.pipeline.resolve(f), f)]
        documents = [d for f in cfg.golden.perplexity for d in load_documents(ctx.pipeline.resolve(f), f)]
        tasks = [task_spec(ctx.pipeline.resolve(t)) for t in cfg.golden.lm_eval]
        corpus = [
            d
            for i, f in enumerate(cfg.golden.drift_corpus)
            for d in load_corpus(
                ctx.pipeline.resolve(f),
                f,
                f"{ctx.pipeline.where('golden', 'drift_corpus', i)}: golden.drift_corpus[{i}]",
            )
        ]
        if tasks and not lm_eval_available():
            raise CapabilityError(
                f"{ctx.pipeline.where('golden', 'lm_eval')}: golden.lm_eval needs lm-evaluation-harness "
                "(pip install lm-eval; pinned in requirements/constraints.txt)"
            )
        sizes = {"task checks": sum(1 for g in golden if _checked(g))} | {
            f: sum(1 for c in choices if c.suite == f) for f in cfg.golden.multiple_choice
        }
        draws = [g.row.repeats for g in golden if _checked(g)]  # greedy rows: 1
        warnings = suite_size_warnings(
            sizes,
            cfg.gates.accuracy_drop_max,
            cfg.gates.confidence,
            cfg.gates.power,
            {"task checks": min(draws)} if draws else None,
        )
        for w in warnings:
            ctx.progress(f"warning: {w}")
        # the gates the configured load leaves without a verdict, as `gates validate` says it
        device = cfg.engine.placement(cuda_available())[0]
        for estimate in estimate_points(cfg, store_reports(ctx.store.root), device):
            short = estimate.warning()
            if short:
                ctx.progress(f"warning: {short}")
        quant_path = check_format_supported(cfg.quant_format, q.kv_cache if q is not None else "none")
        check_placement(ctx)
        engine.check_available()
        ctx.put(
            PreflightResult(
                tuple(golden),
                tuple(calibration),
                quant_path,
                note=f"{len(golden)} golden prompts, {len(calibration)} calibration rows, "
                f"quantization path: {quant_path}",
                choices=tuple(choices),
                documents=tuple(documents),
                warnings=tuple(warnings),
                lm_eval=tuple(tasks),
                corpus=tuple(corpus),
            ),
        )


def _checked(g: GoldenPrompt) -> bool:
    return g.row.has_check
