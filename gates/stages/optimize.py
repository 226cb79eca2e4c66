"""Optimize: resolve the base model, quantize it with Model Optimizer into a content-addressed artifact."""

from __future__ import annotations

import dataclasses
import platform
from importlib.metadata import version
from pathlib import Path
from typing import Any

from gates.artifacts import file_sha256, tree_digest
from gates.context import RunContext
from gates.engines.base import ModelRef
from gates.errors import BadInputError
from gates.stages.preflight import PreflightResult


@dataclasses.dataclass(frozen=True)
class OptimizeResult:
    baseline: ModelRef
    candidate: ModelRef
    reused: bool
    optimize_wall_s: float
    note: str


def tool_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("torch", "transformers", "nvidia-modelopt"):
        try:
            out[dist] = version(dist)
        except Exception:
            out[dist] = "absent"
    return out


def resolve_base(ctx: RunContext) -> Path:
    source = ctx.config.model.source
    if source == "builtin:tiny-llama":
        from gates.models.tiny import ensure_tiny_llama

        return ensure_tiny_llama(ctx.store.root, ctx.progress)
    path = ctx.pipeline.resolve(source)
    if not (path / "config.json").is_file():
        raise BadInputError(
            f"{ctx.pipeline.path}: model.source {source!r}: {path} is not a Hugging Face checkpoint "
            "directory (no config.json)"
        )
    return path


class OptimizeStage:
    name = "optimize"

    def run(self, ctx: RunContext) -> None:
        pre = ctx.need("preflight", PreflightResult)
        base_path = resolve_base(ctx)
        base = ModelRef("baseline", base_path, tree_digest(base_path), "none", "real")
        q = ctx.config.optimize.quantize
        if q is None or q.format == "none":
            cand = dataclasses.replace(base, role="candidate")
            ctx.put(
                self.name, OptimizeResult(base, cand, True, 0.0, "no optimization configured: candidate = baseline")
            )
            return
        inputs = {
            "quantize": q.model_dump(mode="json"),
            "base_digest": base.digest,
            "calibration_digest": file_sha256(ctx.pipeline.resolve(q.calibration)) if q.calibration else None,
            "tools": tool_versions(),
        }

        def build(out: Path) -> dict[str, Any]:
            from gates.models.loader import load_model
            from gates.optimize.quantize import calibration_batches, quantize, save_quantized

            model, tokenizer = load_model(base_path)
            texts = list(pre.calibration)[: q.samples]
            batches = calibration_batches(tokenizer, texts, q.batch_size, q.max_length)
            ctx.progress(f"quantizing to {q.format} with {len(texts)} calibration samples")
            model = quantize(model, q, batches, ctx.progress)
            save_quantized(model, tokenizer, out)
            return {"quant_path": pre.quant_path, "calibration_samples": len(texts)}

        started = ctx.clock()
        art = ctx.store.get_or_build("model-quantized", inputs, build)
        wall = ctx.clock() - started
        cand = ModelRef("candidate", art.path, art.manifest["output_digest"], q.format, pre.quant_path)
        note = f"{'cache hit' if art.reused else 'built'} {q.format} artifact {cand.digest[:12]}"
        ctx.put(self.name, OptimizeResult(base, cand, art.reused, wall, note))
