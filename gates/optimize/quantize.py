"""Post-training quantization with NVIDIA Model Optimizer (``modelopt.torch.quantization``).

Our format names map onto Model Optimizer's predefined configs. On a machine without CUDA,
Model Optimizer runs most formats as *simulated* (fake-quant) quantization: numerics are those
of the format, speed is not. ``FORMATS`` records which path each format takes so the report
can say so; formats with no CPU path are refused before any work.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from gates.artifacts import file_sha256
from gates.config.schema import OptimizeSection, QuantizeSection
from gates.errors import CapabilityError, InfraError, UnsupportedError
from gates.models.loader import MODELOPT_STATE, load_model, prepare_tokenizer
from gates.models.placement import cuda_available
from gates.models.prompts import sample_texts
from gates.optimize.base import RecipeInput
from gates.progress import bar
from gates.quality.golden import Sample

INSTALL_HINT = "pip install 'nvidia-modelopt==0.47.0' (it is in this project's dependencies: run `make demo`)"


@dataclasses.dataclass(frozen=True)
class FormatInfo:
    name: str
    modelopt_cfg: str | None  # attribute of modelopt.torch.quantization
    needs_cuda: bool
    note: str


FORMATS: dict[str, FormatInfo] = {
    "none": FormatInfo("none", None, False, "no quantization: the candidate is the base model"),
    "int8_sq": FormatInfo("int8_sq", "INT8_SMOOTHQUANT_CFG", False, "INT8 weights and activations, SmoothQuant"),
    "int8": FormatInfo("int8", "INT8_DEFAULT_CFG", False, "INT8 weights (per channel) and activations"),
    "int8_wo": FormatInfo("int8_wo", "INT8_WEIGHT_ONLY_CFG", False, "INT8 weights only"),
    "fp8": FormatInfo("fp8", "FP8_DEFAULT_CFG", False, "FP8 E4M3 weights and activations"),
    "fp8_pcpt": FormatInfo(
        "fp8_pcpt", "FP8_PER_CHANNEL_PER_TOKEN_CFG", False, "FP8 weights per channel, activations per token"
    ),
    "fp8_pb_wo": FormatInfo("fp8_pb_wo", "FP8_2D_BLOCKWISE_WEIGHT_ONLY_CFG", False, "FP8 weights in 2-D blocks only"),
    "int4_awq": FormatInfo("int4_awq", "INT4_AWQ_CFG", False, "INT4 weights, block 128, AWQ-lite; 16-bit activations"),
    "int4_wo": FormatInfo("int4_wo", "INT4_BLOCKWISE_WEIGHT_ONLY_CFG", False, "INT4 weights blockwise, no AWQ"),
    "w4a8_awq": FormatInfo("w4a8_awq", "W4A8_AWQ_BETA_CFG", False, "INT4 AWQ weights, FP8 activations"),
    # Seen on CPU (2026-11): the NVFP4 family asserts "amax must be a CUDA tensor", the MX family
    # needs Model Optimizer's CUDA extension; on an H100 nvfp4 ran (simulated).
    "nvfp4": FormatInfo("nvfp4", "NVFP4_DEFAULT_CFG", True, "NVFP4 (E2M1, block 16) weights and activations"),
    "nvfp4_awq": FormatInfo("nvfp4_awq", "NVFP4_AWQ_LITE_CFG", True, "NVFP4 with AWQ-lite"),
    "w4a16_nvfp4": FormatInfo("w4a16_nvfp4", "W4A16_NVFP4_CFG", True, "NVFP4 weights, 16-bit activations"),
    "w4a8_nvfp4_fp8": FormatInfo("w4a8_nvfp4_fp8", "W4A8_NVFP4_FP8_CFG", True, "NVFP4 weights, FP8 activations"),
    "mxfp8": FormatInfo("mxfp8", "MXFP8_DEFAULT_CFG", True, "MXFP8 (OCP microscaling)"),
    "mxfp4": FormatInfo("mxfp4", "MXFP4_DEFAULT_CFG", True, "MXFP4 (OCP microscaling)"),
    "mxint8": FormatInfo("mxint8", "MXINT8_DEFAULT_CFG", True, "MXINT8 (OCP microscaling)"),
    "w4a8_mxfp4_fp8": FormatInfo("w4a8_mxfp4_fp8", "W4A8_MXFP4_FP8_CFG", True, "MXFP4 weights, FP8 activations"),
}
KV_CACHE_CFGS = {"fp8": "FP8_KV_CFG", "nvfp4": "NVFP4_KV_CFG"}
KV_NEEDS_CUDA = {"nvfp4"}


def check_format_supported(fmt: str, kv_cache: str = "none") -> str:
    """Return the execution path ('real' or 'simulated') or raise before any work is done."""
    if kv_cache in KV_NEEDS_CUDA and not cuda_available():
        raise CapabilityError(
            f"KV-cache format {kv_cache!r} needs an NVIDIA GPU with CUDA; use kv_cache fp8 or none here"
        )
    info = FORMATS[fmt]
    if fmt == "none":
        return "real"
    if info.needs_cuda and not cuda_available():
        raise CapabilityError(
            f"quantization format {fmt!r} needs an NVIDIA GPU with CUDA (Model Optimizer has no CPU path "
            f"for it: {info.note}). Run this pipeline on a self-hosted GPU runner, or pick one of: "
            + ", ".join(n for n, i in FORMATS.items() if not i.needs_cuda and n != "none")
        )
    # Model Optimizer inserts fake-quant nodes: on CPU this simulates the format's numerics with
    # float kernels. Latency measured on it is not the shipped engine's latency.
    return "simulated"


def build_quant_config(section: QuantizeSection) -> dict[str, Any]:
    """Model Optimizer config for a section: the predefined format, KV cache, user overrides, excludes.

    ``quant_cfg`` is an ordered list where later entries win, so user overrides go after the
    format's defaults and exclusions go last (an excluded layer stays high precision whatever
    an override says).
    """
    mtq = _import_mtq()
    info = FORMATS[section.format]
    if info.modelopt_cfg is None:
        raise ValueError("format 'none' has no quantization config")
    cfg = copy.deepcopy(getattr(mtq, info.modelopt_cfg))
    entries: list[dict[str, Any]] = list(cfg["quant_cfg"])
    if section.kv_cache != "none":
        entries.extend(copy.deepcopy(getattr(mtq, KV_CACHE_CFGS[section.kv_cache])["quant_cfg"]))
    for pattern, override in section.quant_cfg.items():
        fields = override.model_dump(exclude_none=True)
        enable = fields.pop("enable", None)
        entry: dict[str, Any] = {"quantizer_name": pattern}
        if fields:
            entry["cfg"] = fields
        if enable is not None:
            entry["enable"] = enable
        entries.append(entry)
    for pattern in section.exclude:
        entries.append({"quantizer_name": pattern, "enable": False})
    cfg["quant_cfg"] = entries
    return dict(cfg)


def quantize(
    model: Any,
    section: QuantizeSection,
    calibration_batches: Sequence[Any],
    progress: Callable[[str], None] | None = None,
    what: str = "the model",
    device: str = "cpu",
) -> Any:
    """Quantize ``model`` in place with a calibration loop over ``calibration_batches``.

    ``device``: where calibration runs (``engine.device``: on a GPU runner, the GPU); the model is
    moved there and each batch with it. The caller moves it back before saving (artifacts are
    device-neutral).

    Model Optimizer refusing an architecture or format (it raises plain exceptions) is bad input
    naming ``what`` and the reason: the config asks for something this model cannot be given.
    """
    mtq = _import_mtq()
    import torch

    cfg = build_quant_config(section)
    if device != "cpu":
        model = model.to(device)

    def forward_loop(m: Any) -> None:
        with torch.no_grad():
            batches = enumerate(calibration_batches)
            for i, batch in bar(batches, len(calibration_batches), f"calibration {section.format}"):
                m(**({k: v.to(device) for k, v in batch.items()} if device != "cpu" else batch))
                if progress and (i + 1) % max(1, len(calibration_batches) // 4) == 0:
                    progress(f"calibration {i + 1}/{len(calibration_batches)}")

    try:
        return mtq.quantize(model, cfg, forward_loop)
    except (MemoryError, OSError) as exc:  # the machine, not the model
        raise InfraError(f"Model Optimizer failed to quantize with format {section.format!r}: {exc!r}") from exc
    except Exception as exc:  # modelopt raises plain exceptions; say which model and format it refused
        arch = type(model).__name__
        raise UnsupportedError(
            f"{what}: Model Optimizer refused to quantize {arch} with format {section.format!r}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def calibration_batches(tokenizer: Any, samples: Iterable[Sample], batch_size: int, max_length: int) -> list[Any]:
    """Tokenized batches; right padding (positions of real tokens stay right), padded positions masked."""
    prepare_tokenizer(tokenizer)
    tokenizer.padding_side = "right"
    texts = sample_texts(tokenizer, samples)
    out = []
    for i in range(0, len(texts), batch_size):
        chunk = texts[i : i + batch_size]
        out.append(tokenizer(chunk, return_tensors="pt", padding=True, truncation=True, max_length=max_length))
    return out


HF_EXPORT = "hf_export"


def save_quantized(model: Any, tokenizer: Any, out_dir: Path) -> str:
    """Ship the quantized model: architecture config, tokenizer and Model Optimizer state.

    Also exports the unified Hugging Face checkpoint (``hf_export/``, what TensorRT-LLM, vLLM and
    SGLang load) with ``export_hf_checkpoint``. The served model comes from the Model Optimizer
    state (a plain ``from_pretrained`` of the export would drop the quantization); the export is
    for the engines that build from it. Returns how the export went (it is not fatal: seen
    failing with a newer transformers than Model Optimizer supports).
    """
    import modelopt.torch.opt as mto

    model.config.save_pretrained(out_dir)
    if getattr(model, "generation_config", None) is not None:
        model.generation_config.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    mto.save(model, str(out_dir / MODELOPT_STATE))
    try:
        import torch
        from modelopt.torch.export import export_hf_checkpoint

        # export packs the weights in place (int8/fp8/int4 tensors): export a copy, so the caller's
        # model stays the simulated one (it costs a second copy of the weights while saving)
        export_hf_checkpoint(copy.deepcopy(model), dtype=torch.float16, export_dir=out_dir / HF_EXPORT)
        tokenizer.save_pretrained(out_dir / HF_EXPORT)
        return "ok"
    except Exception as exc:  # keep the served artifact; say why the export is missing
        import shutil

        shutil.rmtree(out_dir / HF_EXPORT, ignore_errors=True)
        return f"failed: {type(exc).__name__}: {exc}"[:300]


def modelopt_version() -> str:
    try:
        from importlib.metadata import version

        return version("nvidia-modelopt")
    except Exception:
        return "absent"


def _import_mtq() -> Any:
    try:
        import modelopt.torch.quantization as mtq
    except ImportError as exc:
        raise CapabilityError(f"NVIDIA Model Optimizer is not installed ({exc}); {INSTALL_HINT}") from exc
    return mtq


class QuantizeRecipe:
    kind = "quantize"
    artifact_kind = "model-quantized"

    def section(self, cfg: OptimizeSection) -> QuantizeSection | None:
        return cfg.quantize if cfg.quantize is not None and cfg.quantize.format != "none" else None

    def data_files(self, section: QuantizeSection) -> tuple[str, ...]:
        return section.data_files()

    def cache_key(self, section: QuantizeSection, inp: RecipeInput) -> dict[str, Any]:
        calibration = inp.pipeline.resolve(section.calibration) if section.calibration else None
        return {
            "quantize": section.model_dump(mode="json"),
            "base_digest": inp.parent.digest,
            "calibration_digest": file_sha256(calibration) if calibration else None,
            # calibrated elsewhere than on CPU: another artifact (CPU keys stay what they were)
            **({"calibration_device": inp.device} if inp.device != "cpu" else {}),
        }

    def build(self, section: QuantizeSection, inp: RecipeInput, out: Path) -> dict[str, Any]:
        model, tokenizer = load_model(inp.parent.path)
        texts = list(inp.calibration)[: section.samples]
        batches = calibration_batches(tokenizer, texts, section.batch_size, section.max_length)
        inp.progress(f"quantizing to {section.format} with {len(texts)} calibration samples")
        what = f"model.source {inp.pipeline.config.model.source!r}"
        model = quantize(model, section, batches, inp.progress, what=what, device=inp.device)
        # artifacts are device-neutral: saved from the CPU
        export = save_quantized(model.to("cpu") if inp.device != "cpu" else model, tokenizer, out)
        return {
            "quant_path": inp.quant_path,
            "hf_export": export,
            "measured": {"calibration_samples": len(texts), "hf_export": export},
        }

    def label(self, section: QuantizeSection, parent_format: str) -> str:
        return section.format if parent_format == "none" else f"{parent_format}+{section.format}"

    def quant_path(self, section: QuantizeSection, inp: RecipeInput) -> str:
        return inp.quant_path
