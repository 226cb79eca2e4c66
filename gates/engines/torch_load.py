"""Loading what a PyTorch engine built, where the engine runs it (``engine.json``: device, dtype).

A plain checkpoint or Model Optimizer artifact (no ``engine.json``) loads on CPU in float32, as
``gates.models.loader`` does. An engine directory names the model it was built from and where it
runs: the model is loaded, placed (``model.to(device, dtype)``), and a ``torch-int8`` or
``torch-fp8`` engine's low-precision layers are installed on that device (their scales stay
float32 whatever the dtype).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gates.engines.fp8_kernels import FP8_WEIGHTS, install_fp8_layers, load_fp8_layers
from gates.engines.int8_kernels import INT8_WEIGHTS, install_int8_layers, load_int8_layers
from gates.models.loader import ENGINE_JSON, engine_source, load_model
from gates.models.placement import place

TORCH_BACKENDS = ("torch", "torch-int8", "torch-fp8")


def engine_spec(path: Path) -> dict[str, Any] | None:
    spec = path / ENGINE_JSON
    if not spec.is_file():
        return None
    data: dict[str, Any] = json.loads(spec.read_text())
    return data


def load_engine_model(path: Path, threads: int | None = None, fold_weights: bool = False) -> tuple[Any, Any]:
    """``(model, tokenizer)`` of a PyTorch engine directory (or a plain checkpoint), placed where it runs."""
    spec = engine_spec(path)
    if spec is None or spec.get("backend") not in TORCH_BACKENDS or "model_path" not in spec:
        return load_model(path, threads, fold_weights=fold_weights)
    backend = spec["backend"]
    # the plain torch engine serves the simulated artifact itself: fold its fake-quantized weights once
    model, tokenizer = load_model(engine_source(path, spec), threads, fold_weights=fold_weights and backend == "torch")
    device, dtype = str(spec.get("device", "cpu")), str(spec.get("dtype", "fp32"))
    place(model, device, dtype)
    if backend == "torch-int8":
        install_int8_layers(model, load_int8_layers(path / INT8_WEIGHTS), device)
    elif backend == "torch-fp8":
        install_fp8_layers(model, load_fp8_layers(path / FP8_WEIGHTS), device)
    model.eval()
    return model, tokenizer
