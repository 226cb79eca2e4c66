"""The ``tensorrt-llm`` backend: real engine builds on GPU runners, a clear refusal elsewhere."""

from __future__ import annotations

import importlib.util

from gates.artifacts import ArtifactStore
from gates.config.schema import EngineSection
from gates.engines.base import EngineBuild, ModelRef
from gates.errors import CapabilityError

HINT = (
    "engine.backend 'tensorrt-llm' needs the tensorrt_llm package and an NVIDIA GPU. On a self-hosted GPU "
    "runner install it from NVIDIA's index (`pip install -e '.[gpu]' --extra-index-url https://pypi.nvidia.com`); "
    "PyPI's tensorrt-llm is only a stub. On CPU machines use engine.backend: torch."
)


class TensorRTLLMEngine:
    name = "tensorrt-llm"

    def check_available(self) -> None:
        if importlib.util.find_spec("tensorrt_llm") is None:
            raise CapabilityError(f"TensorRT-LLM is not installed here. {HINT}")
        import torch

        if not torch.cuda.is_available():
            raise CapabilityError(f"no CUDA device is visible. {HINT}")

    def build(self, store: ArtifactStore, model: ModelRef, cfg: EngineSection) -> EngineBuild:
        self.check_available()
        raise CapabilityError("TensorRT-LLM engine builds are not implemented in this version of gates yet")
