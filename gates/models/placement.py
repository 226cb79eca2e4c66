"""Where a PyTorch model runs: device and dtype (``engine.device``, ``engine.dtype``) and CUDA facts.

One place answers "is there CUDA here", "what compute capability" and "move this model there", so
the engines, the loader, preflight and ``gates formats`` agree on them.
"""

from __future__ import annotations

from typing import Any

TORCH_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def cuda_capability() -> tuple[int, int] | None:
    """Compute capability of the current CUDA device (``(9, 0)`` on an H100), None without CUDA."""
    if not cuda_available():
        return None
    import torch

    major, minor = torch.cuda.get_device_capability()
    return int(major), int(minor)


def torch_dtype(name: str) -> Any:
    import torch

    return getattr(torch, TORCH_DTYPES[name])


def place(model: Any, device: str, dtype: str) -> Any:
    """Move a model to ``device`` in ``dtype`` (a no-op for the CPU/fp32 models the loader builds)."""
    if device == "cpu" and dtype == "fp32":
        return model
    return model.to(device=device, dtype=torch_dtype(dtype))


def model_device(model: Any) -> Any:
    """The device a model's weights are on (where its inputs must go)."""
    return next(model.parameters()).device
