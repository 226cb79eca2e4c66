"""Which engine runs each quantization format on real low-precision kernels, here and on a GPU runner.

Read from the engines' own declarations (``Engine.kernels``), never from a hand-kept table: adding
an engine (one module, one entry in ``ENGINES``) adds it to ``gates formats``.
"""

from __future__ import annotations

import dataclasses

from gates.engines import ENGINES
from gates.errors import CapabilityError
from gates.models.placement import cuda_capability
from gates.optimize.quantize import FORMATS


@dataclasses.dataclass(frozen=True)
class FormatPlaces:
    format: str
    modelopt_cfg: str
    modelopt_here: str  # what Model Optimizer does with it here: simulated, refused, baseline
    real_here: tuple[str, ...]  # engines running it on real kernels on this machine
    real_gpu: tuple[str, ...]  # engines running it on real kernels on a GPU runner (with the GPU they need)
    note: str


def _gpu_label(capability: tuple[int, int]) -> str:
    return "any CUDA GPU" if capability == (0, 0) else f"sm{capability[0]}{capability[1]}+"


def unavailable_engines() -> frozenset[str]:
    """Engines that refuse this machine by their own ``check_available`` (software or hardware missing)."""
    missing = set()
    for name, engine in ENGINES.items():
        try:
            engine.check_available()
        except CapabilityError:
            missing.add(name)
    return frozenset(missing)


def format_places(capability: tuple[int, int] | None, unavailable: frozenset[str] = frozenset()) -> list[FormatPlaces]:
    """Per format: where it runs on real kernels; ``capability`` is this machine's GPU (None: CPU only).
    An engine in ``unavailable`` is named "here" with "(not installed)": the GPU could, this install cannot."""
    device = "GPU" if capability is not None else "CPU"
    out = []
    for name, info in FORMATS.items():
        if name == "none":
            here = "baseline as candidate"
        elif info.needs_cuda and capability is None:
            here = "refused: needs CUDA"
        else:
            here = f"simulated on {device}"
        real_here = tuple(
            e.name + (" (not installed)" if e.name in unavailable else "")
            for e in ENGINES.values()
            if e.kernels.runs(name, capability)
        )
        real_gpu = tuple(
            f"{e.name} ({_gpu_label(e.kernels.formats[name])})"
            for e in ENGINES.values()
            if e.kernels.cuda and name in e.kernels.formats
        )
        out.append(FormatPlaces(name, info.modelopt_cfg or "-", here, real_here, real_gpu, info.note))
    return out


def formats_table() -> list[str]:
    """The lines ``gates formats`` prints for this machine."""
    capability = cuda_capability()
    here = "CPU" if capability is None else f"GPU sm{capability[0]}{capability[1]}"
    lines = [f"{'format':14} {'modelopt config':32} {'Model Optimizer here':22} note"]
    for p in format_places(capability, unavailable_engines()):
        lines.append(f"{p.format:14} {p.modelopt_cfg:32} {p.modelopt_here:22} {p.note}")
        if p.format != "none":
            lines.append(
                f"{'':14} real kernels here ({here}): {', '.join(p.real_here) or 'none'}; "
                f"on a GPU runner: {', '.join(p.real_gpu) or 'none'}"
            )
    lines.append("engines (engine.backend) and their kernels:")
    for e in ENGINES.values():
        where = "/".join(w for w, ok in (("CPU", e.kernels.cpu), ("CUDA", e.kernels.cuda)) if ok)
        note = f" ({e.kernels.note})" if e.kernels.note else ""
        lines.append(f"  {e.name:18} {where:9} {e.kernels.kernel}{note}")
    lines.append("kv_cache: fp8 adds FP8_KV_CFG (KV-cache quantizers) to any format")
    lines.append("engine.device auto|cpu|cuda, engine.dtype bf16|fp16|fp32 (default: fp32 on CPU, bf16 on CUDA)")
    return lines
