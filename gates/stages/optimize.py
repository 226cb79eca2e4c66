"""Optimize: resolve the base model, then prune -> distill -> quantize, each a content-addressed artifact.

Every step's artifact is named by the digest of its inputs (its config section, the parent
artifact's digest, dataset digests, tool versions), so an unchanged recipe is a cache hit and a
changed step rebuilds only itself and what follows.
"""

from __future__ import annotations

import dataclasses
import platform
from importlib.metadata import version
from pathlib import Path
from typing import Any

from gates.artifacts import Artifact, file_sha256, tree_digest
from gates.context import RunContext
from gates.engines.base import ModelRef
from gates.errors import BadInputError
from gates.models.placement import cuda_available
from gates.models.prompts import render_golden
from gates.models.sources import ResolvedSource, resolve_source
from gates.quality.golden import GoldenPrompt
from gates.stages.preflight import PreflightResult


@dataclasses.dataclass(frozen=True)
class OptimizeResult:
    baseline: ModelRef
    candidate: ModelRef
    reused: bool  # every step was a cache hit
    optimize_wall_s: float
    steps: tuple[dict[str, Any], ...]  # per recipe step: kind, digest, reused, what it measured
    note: str
    # the golden rows as the served models receive them (chats rendered with the base tokenizer),
    # in the order of PreflightResult.golden
    prompts: tuple[str, ...] = ()
    source_note: str = ""

    def served_prompts(self, golden: tuple[GoldenPrompt, ...]) -> tuple[str, ...]:
        """What the served models receive for ``golden``: the rendered rows (the display text when
        this result was built without them)."""
        return self.prompts or tuple(g.row.display for g in golden)


def tool_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("torch", "transformers", "nvidia-modelopt"):
        try:
            out[dist] = version(dist)
        except Exception:
            out[dist] = "absent"
    return out


def resolve_base(ctx: RunContext) -> ResolvedSource:
    try:
        return resolve_source(ctx.config.model.source, ctx.pipeline.resolve, ctx.store, ctx.progress)
    except BadInputError as exc:
        raise BadInputError(f"{ctx.pipeline.where('model', 'source')}: {exc}") from None


def render_prompts(base: Path, golden: tuple[GoldenPrompt, ...]) -> tuple[str, ...]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base, local_files_only=True)
    return render_golden(tokenizer, golden)


def _save_hf(model: Any, tokenizer: Any, out: Path) -> None:
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


class OptimizeStage:
    name = "optimize"

    def run(self, ctx: RunContext) -> None:
        pre = ctx.need("preflight", PreflightResult)
        source = resolve_base(ctx)
        base_path = source.path
        prompts = render_prompts(base_path, pre.golden)  # a chat row without a template: exit 2 now
        base = ModelRef("baseline", base_path, tree_digest(base_path), "none", "real")
        opt = ctx.config.optimize
        current = dataclasses.replace(base, role="candidate")
        steps: list[dict[str, Any]] = []
        started = ctx.clock()
        tools = tool_versions()

        def record(kind: str, art: Artifact, label: str, quant_path: str) -> ModelRef:
            steps.append(
                {
                    "kind": kind,
                    "digest": art.manifest["output_digest"],
                    "reused": art.reused,
                    "build_wall_s": art.manifest.get("build_wall_s"),
                    **{k: art.manifest[k] for k in ("measured",) if k in art.manifest},
                }
            )
            ctx.progress(f"{kind}: {'cache hit' if art.reused else 'built'} {art.manifest['output_digest'][:12]}")
            return ModelRef("candidate", art.path, art.manifest["output_digest"], label, quant_path)

        if opt.prune is not None:
            p = opt.prune
            parent = current

            def build_pruned(out: Path) -> dict[str, Any]:
                from gates.models.loader import load_model
                from gates.optimize.prune import prune_mlp
                from gates.optimize.quantize import calibration_batches
                from gates.quality.golden import load_calibration

                model, tok = load_model(parent.path)
                texts = load_calibration(ctx.pipeline.resolve(p.calibration))[: p.samples]
                measured = prune_mlp(model, calibration_batches(tok, texts, 4, p.max_length), p.ffn_ratio, ctx.progress)
                _save_hf(model, tok, out)
                return {"measured": measured}

            art = ctx.store.get_or_build(
                "model-pruned",
                {
                    "prune": p.model_dump(mode="json"),
                    "parent": parent.digest,
                    "calibration": file_sha256(ctx.pipeline.resolve(p.calibration)),
                    "tools": tools,
                },
                build_pruned,
            )
            current = record("prune", art, f"pruned{p.ffn_ratio:g}", "real")

        if opt.distill is not None:
            d = opt.distill
            student_ref = current

            def build_distilled(out: Path) -> dict[str, Any]:
                from gates.models.loader import load_model
                from gates.optimize.distill import distill
                from gates.optimize.quantize import calibration_batches
                from gates.quality.golden import load_calibration

                teacher, tok = load_model(base.path)
                student, _ = load_model(student_ref.path)
                texts = load_calibration(ctx.pipeline.resolve(d.data))
                batches = calibration_batches(tok, texts, d.batch_size, d.max_length)
                student, losses = distill(
                    student,
                    teacher,
                    batches,
                    steps=d.steps,
                    lr=d.lr,
                    temperature=d.temperature,
                    alpha=d.alpha,
                    seed=d.seed,
                    progress=ctx.progress,
                )
                _save_hf(student, tok, out)
                return {"measured": {"first_loss": losses[0], "last_loss": losses[-1], "steps": len(losses)}}

            art = ctx.store.get_or_build(
                "model-distilled",
                {
                    "distill": d.model_dump(mode="json"),
                    "student": student_ref.digest,
                    "teacher": base.digest,
                    "data": file_sha256(ctx.pipeline.resolve(d.data)),
                    "tools": tools,
                },
                build_distilled,
            )
            current = record(
                "distill", art, f"{current.format}+distilled" if current.format != "none" else "distilled", "real"
            )

        q = opt.quantize
        if q is not None and q.format != "none":
            parent = current
            # calibration runs where the engine runs (a GPU runner's GPU); the artifact is saved from CPU
            device = ctx.config.engine.placement(cuda_available())[0]

            def build_quantized(out: Path) -> dict[str, Any]:
                from gates.models.loader import load_model
                from gates.optimize.quantize import calibration_batches, quantize, save_quantized

                model, tokenizer = load_model(parent.path)
                texts = list(pre.calibration)[: q.samples]
                batches = calibration_batches(tokenizer, texts, q.batch_size, q.max_length)
                ctx.progress(f"quantizing to {q.format} with {len(texts)} calibration samples")
                what = f"model.source {ctx.config.model.source!r}"
                model = quantize(model, q, batches, ctx.progress, what=what, device=device)
                export = save_quantized(model.to("cpu") if device != "cpu" else model, tokenizer, out)
                return {
                    "quant_path": pre.quant_path,
                    "hf_export": export,
                    "measured": {"calibration_samples": len(texts), "hf_export": export},
                }

            art = ctx.store.get_or_build(
                "model-quantized",
                {
                    "quantize": q.model_dump(mode="json"),
                    "base_digest": parent.digest,
                    "calibration_digest": file_sha256(ctx.pipeline.resolve(q.calibration)) if q.calibration else None,
                    "tools": tools,
                    # calibrated elsewhere than on CPU: another artifact (CPU keys stay what they were)
                    **({"calibration_device": device} if device != "cpu" else {}),
                },
                build_quantized,
            )
            label = q.format if parent.format == "none" else f"{parent.format}+{q.format}"
            current = record("quantize", art, label, pre.quant_path)

        wall = ctx.clock() - started
        if not steps:
            note = "no optimization configured: candidate = baseline"
            ctx.put(self.name, OptimizeResult(base, current, True, 0.0, (), note, prompts, source.note))
            return
        reused = all(s["reused"] for s in steps)
        chain = " -> ".join(s["kind"] for s in steps)
        note = f"{chain}: candidate {current.digest[:12]} ({'all cache hits' if reused else 'built'})"
        ctx.put(self.name, OptimizeResult(base, current, reused, wall, tuple(steps), note, prompts, source.note))
