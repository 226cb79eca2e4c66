"""Real FP8 GEMMs for a Model Optimizer FP8 artifact (``engine.backend: torch-fp8``).

Model Optimizer's FP8 (``FP8_DEFAULT_CFG``) *simulates* E4M3: every ``QuantLinear`` scales its
weight and input by ``448 / amax`` (one calibrated amax per tensor), casts to ``float8_e4m3fn``,
casts back and multiplies in float. This module turns each such layer into an :class:`Fp8Linear`
whose weight is stored as ``float8_e4m3fn`` and whose product runs in ``torch._scaled_mm``
(FP8 x FP8 with per-tensor scales, as TensorRT-LLM and Model Optimizer's own FP8 GEMM backend do).

The numerics are the artifact's: the stored FP8 weight is exactly the grid point the weight
quantizer chose (the same ``x * (448 / amax)``, clamp and cast as ``modelopt``'s ``fp8_eager``,
so dequantizing it gives the fake-quantized weight bit for bit), the input is quantized with the
*calibrated* input amax the same way, and ``scale_a``/``scale_b`` are the quantizers' inverse
scales. Only the accumulation differs (the GEMM's instead of float32 matmul), which the drift gate
measures like any other difference.

Where it runs: the kernel needs FP8 tensor cores, compute capability 8.9 (Ada) or newer; the engine
refuses anything else (``gates.engines.torch_fp8``). The conversion (scales, packing, which layers)
is plain tensor code and runs anywhere. On CUDA ``_scaled_mm`` needs K and N multiples of 16:
:func:`scaled_mm` zero-pads where a shape does not fit (exact: zeros add nothing) and slices back.

Anything this engine cannot reproduce (another format, per-channel or block scales, an uncalibrated
or enabled output quantizer, SmoothQuant-style pre-quant scales) is refused with the layer's name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from gates.engines.layer_swap import (
    Layers,
    check_all_covered,
    enabled,
    install_layers,
    load_layers,
    round_up,
    save_layers,
)
from gates.errors import CapabilityError

FP8_WEIGHTS = "fp8_linear.pt"
E4M3_MAX = 448.0  # torch.finfo(torch.float8_e4m3fn).max
CUDA_MULTIPLE = 16  # torch._scaled_mm on CUDA: K and N multiples of 16
MIN_CAPABILITY = (8, 9)  # FP8 tensor cores: Ada (sm89), Hopper (sm90) and newer


def to_fp8(x: torch.Tensor, amax: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x_fp8, scale_inv)`` with Model Optimizer's per-tensor E4M3 rounding (``fp8_eager``).

    ``x_fp8.float() * scale_inv`` is exactly Model Optimizer's fake-quantized ``x``."""
    amax = amax.float().reshape(())
    safe = torch.where(amax <= 1.0 / (1 << 24), torch.ones_like(amax), amax)  # modelopt's zero-amax guard
    scale = E4M3_MAX / safe
    q = (x.float() * scale).clamp(-E4M3_MAX, E4M3_MAX).to(torch.float8_e4m3fn)
    return q, (1 / scale).float()


def scaled_mm(
    a: torch.Tensor, b_nk: torch.Tensor, scale_a: torch.Tensor, scale_b: torch.Tensor, out_dtype: torch.dtype
) -> torch.Tensor:
    """``(a [M, K] fp8 * scale_a) @ (b_nk [N, K] fp8 * scale_b)^T`` in ``torch._scaled_mm``.

    The right operand is passed column-major (``b_nk.t()``), as the kernel wants. On CUDA, K and N
    that are not multiples of 16 are zero-padded and the result sliced back."""
    (m, k), n = a.shape, b_nk.shape[0]
    pk, pn = (round_up(k, CUDA_MULTIPLE), round_up(n, CUDA_MULTIPLE)) if a.is_cuda else (k, n)
    if (pk, pn) != (k, n):
        ap = torch.zeros((m, pk), dtype=a.dtype, device=a.device)
        ap[:, :k] = a
        bp = torch.zeros((pn, pk), dtype=b_nk.dtype, device=b_nk.device)
        bp[:n, :k] = b_nk
        a, b_nk = ap, bp
    out = torch._scaled_mm(a, b_nk.t(), scale_a=scale_a, scale_b=scale_b, out_dtype=out_dtype)
    return out[:, :n] if pn != n else out


class Fp8Linear(nn.Module):  # type: ignore[misc]  # torch is untyped under our mypy config
    """y = (q8(x / s_x) @ W_8^T) * s_x * s_w + b, with the product in ``torch._scaled_mm``."""

    weight_fp8: torch.Tensor
    w_scale: torch.Tensor
    in_amax: torch.Tensor
    bias: torch.Tensor | None

    def __init__(self, tensors: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.register_buffer("weight_fp8", tensors["weight_fp8"].contiguous())  # [N, K] row-major
        self.register_buffer("w_scale", tensors["w_scale"].float().reshape(()))
        self.register_buffer("in_amax", tensors["in_amax"].float().reshape(()))
        self.register_buffer("bias", tensors.get("bias"))
        self.out_features, self.in_features = self.weight_fp8.shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        xq, x_scale = to_fp8(x.reshape(-1, self.in_features), self.in_amax)
        # float32 out: the scales' product is applied before any rounding to the model's dtype
        y = scaled_mm(xq, self.weight_fp8, x_scale, self.w_scale, torch.float32)
        if self.bias is not None:
            y = y + self.bias.float()
        return y.reshape(*shape[:-1], self.out_features).to(x.dtype)


def _check_fp8_per_tensor(name: str, q: Any, what: str) -> None:
    if getattr(q, "num_bits", None) != (4, 3) or getattr(q, "block_sizes", None):
        raise CapabilityError(
            f"engine torch-fp8 runs FP8 E4M3 per-tensor layers only; {name}.{what} is {q} (use engine.backend: torch)"
        )
    if q.amax is None or q.amax.numel() != 1:
        raise CapabilityError(f"engine torch-fp8 needs a calibrated per-tensor {what} scale; {name} has {q}")


def extract_fp8_layers(model: nn.Module) -> dict[str, dict[str, torch.Tensor]]:
    """FP8 tensors of every quantized Linear of a restored Model Optimizer FP8 model, by module name."""
    layers: dict[str, dict[str, torch.Tensor]] = {}
    covered: set[str] = set()
    for name, mod in model.named_modules():
        wq: Any = getattr(mod, "weight_quantizer", None)
        if not isinstance(mod, nn.Linear) or not enabled(wq):
            continue
        iq: Any = getattr(mod, "input_quantizer", None)
        oq: Any = getattr(mod, "output_quantizer", None)
        _check_fp8_per_tensor(name, wq, "weight_quantizer")
        if not enabled(iq):
            raise CapabilityError(
                f"engine torch-fp8 runs FP8 x FP8 products; {name} has weight-only quantization "
                "(use engine.backend: torch)"
            )
        _check_fp8_per_tensor(name, iq, "input_quantizer")
        if getattr(iq, "_pre_quant_scale", None) is not None:
            raise CapabilityError(
                f"engine torch-fp8 has no pre-quant (smoothing) scale; {name}.input_quantizer has one"
            )
        if enabled(oq):
            raise CapabilityError(f"engine torch-fp8 cannot quantize outputs; {name}.output_quantizer is enabled")
        with torch.no_grad():
            w_fp8, w_scale = to_fp8(mod.weight.detach(), wq.amax)
            tensors = {"weight_fp8": w_fp8.contiguous(), "w_scale": w_scale, "in_amax": iq.amax.float().reshape(())}
            if mod.bias is not None:
                tensors["bias"] = mod.bias.detach().float().clone()
        layers[name] = tensors
        covered.update({f"{name}.weight_quantizer", f"{name}.input_quantizer"})
    check_all_covered(model, layers, covered, "torch-fp8", "FP8", "fp8")
    return layers


def install_fp8_layers(model: nn.Module, layers: Layers, device: str = "cpu") -> nn.Module:
    """Replace the named Linear modules by :class:`Fp8Linear` on ``device`` (in place; returns the model)."""
    return install_layers(model, layers, Fp8Linear, "FP8", device)


def save_fp8_layers(layers: Layers, out_dir: Path) -> Path:
    return save_layers(layers, out_dir / FP8_WEIGHTS)


def load_fp8_layers(path: Path) -> Layers:
    return load_layers(path, "FP8")


def check_fp8_device(capability: tuple[int, int] | None) -> None:
    """Refuse, with the reason, a device without FP8 tensor cores (``None``: no CUDA)."""
    if capability is None:
        raise CapabilityError(
            "engine.backend 'torch-fp8' runs FP8 GEMMs (torch._scaled_mm) on an NVIDIA GPU of compute capability "
            "8.9 or newer; no CUDA device is visible here (use engine.backend: torch, simulated, on CPU)"
        )
    if capability < MIN_CAPABILITY:
        raise CapabilityError(
            f"engine.backend 'torch-fp8' needs FP8 tensor cores (compute capability >= 8.9: Ada, Hopper or newer); "
            f"this GPU is compute capability {capability[0]}.{capability[1]} (use engine.backend: torch)"
        )
