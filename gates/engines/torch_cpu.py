"""The ``torch`` backend: serves the model artifact with PyTorch inside Triton's Python backend."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gates.artifacts import ArtifactStore
from gates.config.schema import EngineSection
from gates.engines.base import EngineBuild, ModelRef
from gates.engines.torch_runner import TorchRunner
from gates.triton.repository import write_model


class TorchEngine:
    name = "torch"

    def check_available(self) -> None:
        return None  # torch is a hard dependency

    def build(self, store: ArtifactStore, model: ModelRef, cfg: EngineSection) -> EngineBuild:
        def write(out: Path) -> dict[str, Any]:
            (out / "engine.json").write_text(
                json.dumps(
                    {
                        "backend": self.name,
                        "model_digest": model.digest,
                        "model_path": str(model.path),
                        "dtype": "float32",
                        "max_batch_size": cfg.max_batch_size,
                    },
                    indent=2,
                    sort_keys=True,
                )
            )
            return {}

        art = store.get_or_build("engine-torch", {"model": model.digest, "engine": cfg.model_dump()}, write)
        simulated = model.quant_path == "simulated"
        note = (
            f"candidate format {model.format} runs as Model Optimizer fake-quant on CPU: float kernels simulate its "
            "numerics, so its latency is not the latency of the shipped engine"
            if simulated
            else "latency measured on the served model"
        )
        return EngineBuild(self.name, model, model.path, art.digest, art.reused, not simulated, note)

    def write_serving(self, repo: Path, name: str, build: EngineBuild, threads: int) -> Path:
        return write_model(repo, name, build.serve_path, threads)

    def runner(self, path: Path, threads: int) -> TorchRunner:
        return TorchRunner(path, threads)
