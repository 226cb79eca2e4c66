"""The ``torch-fp8`` backend: FP8 candidates on real FP8 GEMMs (``torch._scaled_mm``) on CUDA >= sm89.

The baseline (no quantization) is served as with ``torch`` (bf16 on CUDA by default); the
candidate's FP8 Linear layers become :class:`gates.engines.fp8_kernels.Fp8Linear` (FP8 E4M3 weights
and the calibrated per-tensor scales of Model Optimizer's FP8 config, built here once from the
artifact and stored in the engine artifact), so the performance gates compare the bf16 baseline
against real FP8 tensor-core products, not against a simulation. Refused, with the reason, without
CUDA or below compute capability 8.9 (no FP8 tensor cores).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gates.artifacts import ArtifactStore, EngineBuild, ModelRef
from gates.config.engine import EngineSection
from gates.config.schema import Pipeline
from gates.engines.base import ConfigProblem, KernelSupport, formats_rule
from gates.engines.fp8_kernels import MIN_CAPABILITY, check_fp8_device, extract_fp8_layers, save_fp8_layers
from gates.engines.torch_cpu import TorchEngine, placement
from gates.engines.torch_runner import TorchRunner
from gates.errors import CapabilityError
from gates.models.loader import ENGINE_JSON, load_model
from gates.models.placement import cuda_capability
from gates.triton.repository import write_model

FP8_ENGINE_FORMATS = ("fp8",)  # FP8 E4M3 per-tensor weights and activations: what this engine executes


class TorchFp8Engine:
    name = "torch-fp8"
    kernels = KernelSupport(
        "torch._scaled_mm (FP8 E4M3 x E4M3, per-tensor scales)",
        dict.fromkeys(FP8_ENGINE_FORMATS, MIN_CAPABILITY),
        cuda=True,
    )

    options: frozenset[str] = frozenset()

    def check_config(self, pipeline: Pipeline) -> list[ConfigProblem]:
        problems = formats_rule(self.name, FP8_ENGINE_FORMATS, pipeline)
        if pipeline.engine.device == "cpu":
            problems.append(
                ConfigProblem(
                    ("engine", "device"), "engine.backend 'torch-fp8' runs on CUDA: engine.device cannot be cpu"
                )
            )
        return problems

    def check_available(self) -> None:
        check_fp8_device(cuda_capability())

    def build(self, store: ArtifactStore, model: ModelRef, cfg: EngineSection) -> EngineBuild:
        if model.format == "none":  # the baseline runs in bf16 (engine.dtype): what FP8 is compared with
            return TorchEngine().build(store, model, cfg)
        if model.format not in FP8_ENGINE_FORMATS:
            raise CapabilityError(f"engine torch-fp8 runs {', '.join(FP8_ENGINE_FORMATS)}, not {model.format!r}")
        self.check_available()
        device, dtype = placement(cfg)
        if device != "cuda":
            raise CapabilityError("engine torch-fp8 runs on CUDA; engine.device is cpu")

        def write(out: Path) -> dict[str, Any]:
            loaded, _ = load_model(model.path)
            layers = extract_fp8_layers(loaded)
            save_fp8_layers(layers, out)
            (out / ENGINE_JSON).write_text(
                json.dumps(
                    {
                        "backend": self.name,
                        "model_digest": model.digest,
                        "model_path": str(model.path),
                        "kernel": "torch._scaled_mm (fp8 e4m3 x e4m3, per-tensor scales)",
                        "device": device,
                        "dtype": dtype,
                        "fp8_layers": len(layers),
                        "max_batch_size": cfg.max_batch_size,
                    },
                    indent=2,
                    sort_keys=True,
                )
            )
            return {"fp8_layers": len(layers)}

        inputs = {"model": model.digest, "engine": cfg.model_dump(), "device": device, "dtype": dtype}
        art = store.get_or_build("engine-torch-fp8", inputs, write)
        note = (
            f"candidate format {model.format} runs on FP8 GEMMs (torch._scaled_mm) on CUDA, other operations in "
            f"{dtype}: latency measured on real low-precision kernels"
        )
        return EngineBuild(self.name, model, art.path, art.digest, art.reused, True, note, device=device, dtype=dtype)

    def write_serving(self, repo: Path, name: str, build: EngineBuild, threads: int) -> Path:
        return write_model(repo, name, build.serve_path, threads, device=build.device)

    def runner(self, path: Path, threads: int) -> TorchRunner:
        return TorchRunner(path, threads)
