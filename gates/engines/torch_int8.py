"""The ``torch-int8`` backend: INT8 candidates on real integer kernels (``torch._int_mm``), CPU or CUDA.

The baseline (no quantization) is served as with ``torch`` (float32 on CPU, ``engine.dtype`` on
CUDA); the candidate's quantized
Linear layers become :class:`gates.engines.int8_kernels.Int8Linear` (int8 weights built here,
once, from the artifact, and stored in the engine artifact with their digest). So the
performance gates compare a float baseline against real INT8 GEMMs, not against a simulation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gates.artifacts import ArtifactStore, EngineBuild, ModelRef
from gates.config.engine import EngineSection
from gates.config.schema import Pipeline
from gates.engines.base import ConfigProblem, KernelSupport, formats_rule
from gates.engines.torch_cpu import TorchEngine, placement
from gates.engines.torch_runner import TorchRunner
from gates.errors import CapabilityError
from gates.models.loader import load_model
from gates.models.placement import TORCH_DTYPES
from gates.triton.repository import write_model

ENGINE_JSON = "engine.json"
INT8_ENGINE_FORMATS = ("int8", "int8_sq")  # INT8 weights and activations: what this engine executes


class TorchInt8Engine:
    name = "torch-int8"
    kernels = KernelSupport(
        "torch._int_mm (int8 x int8 -> int32)", dict.fromkeys(INT8_ENGINE_FORMATS, (0, 0)), cpu=True, cuda=True
    )

    options: frozenset[str] = frozenset()

    def check_config(self, pipeline: Pipeline) -> list[ConfigProblem]:
        return formats_rule(self.name, INT8_ENGINE_FORMATS, pipeline)

    def check_available(self) -> None:
        import torch

        try:  # the kernel this engine runs; absent or broken on some builds and CPUs
            a = torch.ones((2, 8), dtype=torch.int8)
            torch._int_mm(a, torch.ones((8, 8), dtype=torch.int8))
        except (AttributeError, RuntimeError, NotImplementedError) as exc:
            raise CapabilityError(
                f"engine.backend 'torch-int8' needs torch._int_mm on CPU (torch >= 2.2): {exc}; "
                "use engine.backend: torch"
            ) from exc

    def build(self, store: ArtifactStore, model: ModelRef, cfg: EngineSection) -> EngineBuild:
        if model.format == "none":  # the baseline runs in float: that is what INT8 is compared with
            return TorchEngine().build(store, model, cfg)
        if model.format not in INT8_ENGINE_FORMATS:
            raise CapabilityError(f"engine torch-int8 runs {', '.join(INT8_ENGINE_FORMATS)}, not {model.format!r}")
        device, dtype = placement(cfg)

        def write(out: Path) -> dict[str, Any]:
            from gates.engines.int8_kernels import extract_int8_layers, save_int8_layers

            loaded, _ = load_model(model.path)
            layers = extract_int8_layers(loaded)
            save_int8_layers(layers, out)
            (out / ENGINE_JSON).write_text(
                json.dumps(
                    {
                        "backend": self.name,
                        "model_digest": model.digest,
                        "model_path": str(model.path),
                        "kernel": "torch._int_mm (int8 x int8 -> int32)",
                        "device": device,
                        "dtype": dtype,
                        "int8_layers": len(layers),
                        "max_batch_size": cfg.max_batch_size,
                    },
                    indent=2,
                    sort_keys=True,
                )
            )
            return {"int8_layers": len(layers)}

        inputs = {"model": model.digest, "engine": cfg.model_dump(), "device": device, "dtype": dtype}
        art = store.get_or_build("engine-torch-int8", inputs, write)
        note = (
            f"candidate format {model.format} runs on INT8 integer GEMMs (torch._int_mm) on "
            f"{'CUDA' if device == 'cuda' else 'CPU'}, other operations in {TORCH_DTYPES[dtype]}: latency measured on "
            "real low-precision kernels"
        )
        return EngineBuild(self.name, model, art.path, art.digest, art.reused, True, note, device=device, dtype=dtype)

    def write_serving(self, repo: Path, name: str, build: EngineBuild, threads: int) -> Path:
        return write_model(repo, name, build.serve_path, threads, device=build.device)

    def runner(self, path: Path, threads: int) -> TorchRunner:
        return TorchRunner(path, threads)
