"""Structured pruning that physically shrinks a Llama-shaped model: MLP width, uniformly per layer.

Model Optimizer's FastNAS search gives each layer its own MLP width, which ``save_pretrained`` /
``from_pretrained`` cannot represent (one ``intermediate_size`` per config), and its Minitron
mode needs Megatron-Core; ``torch.nn.utils.prune`` only masks. So we prune by hand: score every
MLP channel by its mean activation magnitude |act(gate(x)) · up(x)| over the calibration set
(the channel's contribution to ``down_proj``'s input), keep the top ``ffn_ratio`` of channels in
every layer, and rebuild ``gate_proj``/``up_proj`` rows and ``down_proj`` columns. The result
saves and loads like any Hugging Face checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gates.artifacts import file_sha256
from gates.config.schema import OptimizeSection, PruneSection
from gates.errors import BadInputError
from gates.models.loader import load_model
from gates.optimize.base import RecipeInput, save_hf
from gates.optimize.quantize import calibration_batches
from gates.progress import bar
from gates.quality.golden import load_calibration


def mlp_layers(model: Any) -> list[Any]:
    layers = getattr(getattr(model, "model", None), "layers", None)
    if layers is None or not all(hasattr(layer, "mlp") and hasattr(layer.mlp, "gate_proj") for layer in layers):
        raise BadInputError("optimize.prune supports Llama-shaped models (gate_proj/up_proj/down_proj MLPs) only")
    return list(layers)


def channel_importance(model: Any, batches: Sequence[Any]) -> list[Any]:
    """Per layer, the mean |act(gate(x)) * up(x)| of each MLP channel over the calibration tokens."""
    import torch

    layers = mlp_layers(model)
    sums = [torch.zeros(layer.mlp.gate_proj.out_features, dtype=torch.float64) for layer in layers]
    counts = [0 for _ in layers]
    hooks = []
    for i, layer in enumerate(layers):

        def hook(module: Any, inputs: tuple[Any, ...], output: Any, i: int = i) -> None:
            x = inputs[0].detach().reshape(-1, inputs[0].shape[-1])
            sums[i] += x.abs().double().sum(0)
            counts[i] += x.shape[0]

        hooks.append(layer.mlp.down_proj.register_forward_hook(hook))
    try:
        with torch.no_grad():
            for batch in bar(batches, len(batches), "pruning: importance"):
                model(**batch)
    finally:
        for h in hooks:
            h.remove()
    if not all(counts):
        raise BadInputError("pruning needs calibration data: no tokens reached the MLPs")
    return [s / c for s, c in zip(sums, counts, strict=True)]


def prune_mlp(
    model: Any, batches: Sequence[Any], ffn_ratio: float, progress: Callable[[str], None] | None = None
) -> dict[str, int]:
    """Keep ``ffn_ratio`` of every layer's MLP channels (the most important); returns sizes."""
    import torch

    if not 0 < ffn_ratio <= 1:
        raise BadInputError(f"optimize.prune.ffn_ratio must be in (0, 1], got {ffn_ratio}")
    before = sum(p.numel() for p in model.parameters())
    scores = channel_importance(model, batches)
    layers = mlp_layers(model)
    width = layers[0].mlp.gate_proj.out_features
    keep_n = max(1, round(width * ffn_ratio))
    pairs = enumerate(zip(layers, scores, strict=True))
    for i, (layer, score) in bar(pairs, len(layers), "pruning"):
        keep = torch.sort(torch.topk(score, keep_n).indices).values
        mlp = layer.mlp
        for name in ("gate_proj", "up_proj"):
            old = getattr(mlp, name)
            new = torch.nn.Linear(old.in_features, keep_n, bias=old.bias is not None, dtype=old.weight.dtype)
            new.weight.data = old.weight.data[keep].clone()
            if old.bias is not None:
                new.bias.data = old.bias.data[keep].clone()
            setattr(mlp, name, new)
        old = mlp.down_proj
        new = torch.nn.Linear(keep_n, old.out_features, bias=old.bias is not None, dtype=old.weight.dtype)
        new.weight.data = old.weight.data[:, keep].clone()
        if old.bias is not None:
            new.bias.data = old.bias.data.clone()
        mlp.down_proj = new
        if hasattr(mlp, "intermediate_size"):
            mlp.intermediate_size = keep_n
        if progress:
            progress(f"pruned layer {i + 1}/{len(layers)}: MLP width {width} -> {keep_n}")
    model.config.intermediate_size = keep_n
    after = sum(p.numel() for p in model.parameters())
    return {"params_before": before, "params_after": after, "ffn_width_before": width, "ffn_width_after": keep_n}


class PruneRecipe:
    kind = "prune"
    artifact_kind = "model-pruned"

    def section(self, cfg: OptimizeSection) -> PruneSection | None:
        return cfg.prune

    def data_files(self, section: PruneSection) -> tuple[str, ...]:
        return section.data_files()

    def cache_key(self, section: PruneSection, inp: RecipeInput) -> dict[str, Any]:
        return {
            "prune": section.model_dump(mode="json"),
            "parent": inp.parent.digest,
            "calibration": file_sha256(inp.pipeline.resolve(section.calibration)),
        }

    def build(self, section: PruneSection, inp: RecipeInput, out: Path) -> dict[str, Any]:
        model, tok = load_model(inp.parent.path)
        texts = load_calibration(inp.pipeline.resolve(section.calibration))[: section.samples]
        batches = calibration_batches(tok, texts, 4, section.max_length)
        measured = prune_mlp(model, batches, section.ffn_ratio, inp.progress)
        save_hf(model, tok, out)
        return {"measured": measured}

    def label(self, section: PruneSection, parent_format: str) -> str:
        return f"pruned{section.ffn_ratio:g}"

    def quant_path(self, section: PruneSection, inp: RecipeInput) -> str:
        return "real"
