"""Real INT8 GEMMs on CPU for a Model Optimizer INT8 artifact (``engine.backend: torch-int8``).

Model Optimizer's CPU path *simulates* INT8: every ``QuantLinear`` rounds its weight and input to
the INT8 grid and multiplies in float. This module turns each such layer into an
:class:`Int8Linear` whose weight is stored as ``int8`` and whose product runs in
``torch._int_mm`` (int8 x int8 -> int32 accumulation), so latency measured on it is the latency of
integer kernels. The numerics stay the artifact's: the integer weight is exactly the grid point the
weight quantizer chose (``round(w / (amax / 127))``), activations are scaled by SmoothQuant's
``pre_quant_scale`` and quantized with the *calibrated* static per-tensor scale, as in the
simulation. Only the accumulation differs (exact int32 instead of float32), which the drift gate
measures like any other difference.

On CUDA the product is ``torch._int_mm`` too, whose CUDA kernel needs more than 16 rows and K and
N multiples of 8: :func:`int_mm` pads with zeros where a shape does not fit (zero rows and
columns add nothing to an integer sum, so the result is exact) and slices the padding off.

Anything this engine cannot reproduce (another bit width, block scales, an enabled output or
KV-cache quantizer) is refused with the layer's name: an engine that silently dropped a quantizer
would gate a different model from the one shipped.
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

INT8_WEIGHTS = "int8_linear.pt"
QMIN, QMAX = -128, 127  # modelopt's 8-bit signed grid (narrow_range off)


class Int8Linear(nn.Module):  # type: ignore[misc]  # torch is untyped under our mypy config
    """y = (q(x * s_pre / s_x) @ W_q^T) * s_x * s_w + b, with the product in int8 -> int32."""

    weight_kn: torch.Tensor
    w_scale: torch.Tensor
    in_scale: torch.Tensor
    pre_quant_scale: torch.Tensor | None
    bias: torch.Tensor | None

    def __init__(self, tensors: dict[str, torch.Tensor]) -> None:
        super().__init__()
        # _int_mm wants the right operand as [K, N]; contiguous once here, not per call
        self.register_buffer("weight_kn", tensors["weight_kn"].contiguous())
        self.register_buffer("w_scale", tensors["w_scale"])
        self.register_buffer("in_scale", tensors["in_scale"])
        self.register_buffer("pre_quant_scale", tensors.get("pre_quant_scale"))
        self.register_buffer("bias", tensors.get("bias"))
        self.in_features, self.out_features = self.weight_kn.shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x2 = x.reshape(-1, self.in_features).float()
        if self.pre_quant_scale is not None:
            x2 = x2 * self.pre_quant_scale
        xq = torch.clamp(torch.round(x2 / self.in_scale), QMIN, QMAX).to(torch.int8)
        y = int_mm(xq, self.weight_kn).float() * (self.in_scale * self.w_scale)
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*shape[:-1], self.out_features).to(x.dtype)


CUDA_MIN_ROWS, CUDA_MULTIPLE = 17, 8  # torch._int_mm on CUDA: M > 16, K and N multiples of 8


def int_mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a [M, K] int8 @ b [K, N] int8 -> int32`` with ``torch._int_mm``.

    On CPU as is. On CUDA, shapes the kernel refuses are zero-padded (rows up to 17, K and N up to
    multiples of 8) and the result sliced back: exact, since zeros add nothing to the sums.
    """
    if not a.is_cuda:
        return torch._int_mm(a, b)
    (m, k), n = a.shape, b.shape[1]
    pm, pk, pn = max(m, CUDA_MIN_ROWS), round_up(k, CUDA_MULTIPLE), round_up(n, CUDA_MULTIPLE)
    if (pm, pk, pn) == (m, k, n):
        return torch._int_mm(a, b)
    ap = torch.zeros((pm, pk), dtype=a.dtype, device=a.device)
    ap[:m, :k] = a
    bp = b
    if (pk, pn) != (k, n):
        bp = torch.zeros((pk, pn), dtype=b.dtype, device=b.device)
        bp[:k, :n] = b
    return torch._int_mm(ap, bp)[:m, :n]


def _check_int8_per_tensor(name: str, q: Any, what: str) -> None:
    if getattr(q, "num_bits", None) != 8 or getattr(q, "block_sizes", None):
        raise CapabilityError(
            f"engine torch-int8 runs 8-bit integer layers only; {name}.{what} is {q} (use engine.backend: torch)"
        )


def extract_int8_layers(model: nn.Module) -> dict[str, dict[str, torch.Tensor]]:
    """INT8 tensors of every quantized Linear of a restored Model Optimizer model, by module name."""
    layers: dict[str, dict[str, torch.Tensor]] = {}
    covered: set[str] = set()
    for name, mod in model.named_modules():
        wq: Any = getattr(mod, "weight_quantizer", None)
        if not isinstance(mod, nn.Linear) or not enabled(wq):
            continue
        iq: Any = getattr(mod, "input_quantizer", None)
        oq: Any = getattr(mod, "output_quantizer", None)
        _check_int8_per_tensor(name, wq, "weight_quantizer")
        if wq.axis != 0 or wq.amax is None or wq.amax.numel() != mod.out_features:
            raise CapabilityError(f"engine torch-int8 needs per-output-channel weight scales; {name} has {wq}")
        if not enabled(iq):
            raise CapabilityError(
                f"engine torch-int8 runs INT8 x INT8 products; {name} has weight-only quantization "
                "(formats int8 and int8_sq have INT8 activations; use engine.backend: torch for int8_wo)"
            )
        _check_int8_per_tensor(name, iq, "input_quantizer")
        if iq.amax is None or iq.amax.numel() != 1:
            raise CapabilityError(f"engine torch-int8 needs a static per-tensor input scale; {name} has {iq}")
        if enabled(oq):
            raise CapabilityError(f"engine torch-int8 cannot quantize outputs; {name}.output_quantizer is enabled")
        with torch.no_grad():
            w_scale = (wq.amax.float().reshape(-1) / QMAX).clamp_min(torch.finfo(torch.float32).tiny)
            # the weight quantizer's own output is the grid point; dividing by its scale recovers the integer
            w_int = torch.round(wq(mod.weight.float()) / w_scale[:, None])
            tensors = {
                "weight_kn": w_int.clamp(QMIN, QMAX).to(torch.int8).t().contiguous(),
                "w_scale": w_scale,
                "in_scale": (iq.amax.float().reshape(()) / QMAX).clamp_min(torch.finfo(torch.float32).tiny),
            }
            pqs = getattr(iq, "_pre_quant_scale", None)
            if pqs is not None:
                tensors["pre_quant_scale"] = pqs.float().reshape(-1).clone()
            if mod.bias is not None:
                tensors["bias"] = mod.bias.detach().float().clone()
        layers[name] = tensors
        covered.update({f"{name}.weight_quantizer", f"{name}.input_quantizer"})
    check_all_covered(model, layers, covered, "torch-int8", "INT8", "int8/int8_sq")
    return layers


def install_int8_layers(model: nn.Module, layers: Layers, device: str = "cpu") -> nn.Module:
    """Replace the named Linear modules by :class:`Int8Linear` on ``device`` (in place; returns the model)."""
    return install_layers(model, layers, Int8Linear, "INT8", device)


def save_int8_layers(layers: Layers, out_dir: Path) -> Path:
    return save_layers(layers, out_dir / INT8_WEIGHTS)


def load_int8_layers(path: Path) -> Layers:
    return load_layers(path, "INT8")
