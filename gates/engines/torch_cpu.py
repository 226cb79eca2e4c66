"""The ``torch`` backend: serves the model artifact with PyTorch inside Triton's Python backend.

Where it runs comes from ``engine.device``/``engine.dtype`` (``EngineSection.placement``): on CPU
in float32 the artifact itself is served; elsewhere (CUDA, or another dtype) an engine directory
whose ``engine.json`` names the artifact, the device and the dtype, and Triton's instance group
follows the device.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gates.artifacts import ArtifactStore, EngineBuild, ModelRef
from gates.config.engine import EngineSection
from gates.config.schema import Pipeline
from gates.engines.base import ConfigProblem, KernelSupport
from gates.engines.torch_runner import TorchRunner
from gates.models.placement import cuda_available
from gates.triton.repository import write_model


def placement(cfg: EngineSection) -> tuple[str, str]:
    """``(device, dtype)`` of a PyTorch engine on this machine."""
    return cfg.placement(cuda_available())


class TorchEngine:
    name = "torch"
    kernels = KernelSupport(
        "PyTorch float kernels; quantized formats as Model Optimizer fake-quant (simulated)", cpu=True, cuda=True
    )

    options: frozenset[str] = frozenset()

    def check_config(self, pipeline: Pipeline) -> list[ConfigProblem]:
        return []  # every Model Optimizer format runs here, simulated (the report says so)

    def check_available(self) -> None:
        return None  # torch is a hard dependency; engine.device cuda without CUDA is refused by preflight

    def build(self, store: ArtifactStore, model: ModelRef, cfg: EngineSection) -> EngineBuild:
        device, dtype = placement(cfg)

        def write(out: Path) -> dict[str, Any]:
            (out / "engine.json").write_text(
                json.dumps(
                    {
                        "backend": self.name,
                        "model_digest": model.digest,
                        "model_path": str(model.path),
                        "device": device,
                        "dtype": dtype,
                        "max_batch_size": cfg.max_batch_size,
                    },
                    indent=2,
                    sort_keys=True,
                )
            )
            return {}

        inputs = {"model": model.digest, "engine": cfg.model_dump(), "device": device, "dtype": dtype}
        art = store.get_or_build("engine-torch", inputs, write)
        simulated = model.quant_path == "simulated"
        where = "CUDA" if device == "cuda" else "CPU"
        plain = (device, dtype) == ("cpu", "fp32")
        note = (
            f"candidate format {model.format} runs as Model Optimizer fake-quant on {where}: float kernels simulate "
            "its numerics, so its latency is not the latency of the shipped engine"
            if simulated
            else "latency measured on the served model" + ("" if plain else f" ({where}, {dtype})")
        )
        # on CPU in float32 the artifact is served as it is; elsewhere the engine directory says where
        serve = model.path if plain else art.path
        return EngineBuild(
            self.name, model, serve, art.digest, art.reused, not simulated, note, device=device, dtype=dtype
        )

    def write_serving(self, repo: Path, name: str, build: EngineBuild, threads: int) -> Path:
        return write_model(repo, name, build.serve_path, threads, device=build.device)

    def runner(self, path: Path, threads: int) -> TorchRunner:
        return TorchRunner(path, threads)
