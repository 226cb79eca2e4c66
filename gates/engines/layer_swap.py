"""What the real-kernel PyTorch engines (``torch-int8``, ``torch-fp8``) share: finding Model
Optimizer's quantizers, refusing an artifact with quantizers an engine would silently drop, and
swapping a model's Linear layers for the engine's layers (saved with the engine, loaded on CPU).

Imports torch at module level: imported only by the kernel modules, which the engines import
lazily."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gates.errors import CapabilityError

Layers = dict[str, dict[str, torch.Tensor]]


def round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def quantizers(module: nn.Module) -> Iterator[tuple[str, Any]]:
    for name, child in module.named_modules():
        if type(child).__name__.endswith("TensorQuantizer"):
            yield name, child


def enabled(q: Any) -> bool:
    return q is not None and bool(getattr(q, "is_enabled", False))


def check_all_covered(
    model: nn.Module, layers: Layers, covered: Collection[str], engine: str, kind: str, formats: str
) -> None:
    """The engine runs every enabled quantizer of the artifact, or its numerics would not be the
    artifact's: refuse naming the ones left (and an artifact with no layer of ``kind`` at all)."""
    if not layers:
        raise CapabilityError(
            f"engine {engine} found no {kind} layer in the candidate (is it quantized {kind.lower()}?)"
        )
    left = [n for n, q in quantizers(model) if enabled(q) and n not in covered]
    if left:
        raise CapabilityError(
            f"engine {engine} cannot run these enabled quantizers, so its numerics would not be the "
            f"artifact's: {', '.join(left[:6])}{' …' if len(left) > 6 else ''} (use engine.backend: torch)"
        )


def install_layers(
    model: nn.Module, layers: Layers, make: Callable[[dict[str, torch.Tensor]], nn.Module], kind: str, device: str
) -> nn.Module:
    """Replace the named Linear modules by ``make(tensors)`` on ``device`` (in place; returns the model).

    Install after the model is placed (``model.to(device, dtype)``): the layers' scales stay float32."""
    for name, tensors in layers.items():
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        if not isinstance(getattr(parent, child, None), nn.Linear):
            raise CapabilityError(f"{kind} engine layer {name} does not match a Linear of the model")
        setattr(parent, child, make(tensors).to(device))
    return model


def save_layers(layers: Layers, path: Path) -> Path:
    torch.save(layers, path)
    return path


def load_layers(path: Path, kind: str) -> Layers:
    data = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(data, dict):
        raise CapabilityError(f"{path}: not an {kind} engine file")
    return data
