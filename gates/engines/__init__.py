"""Serving engines behind one Protocol, listed in one explicit dict.

An engine builds its artifact, writes its Triton repository entry and runs it (a ``Runner``);
adding one is one module and one entry below.
"""

from __future__ import annotations

import json
from pathlib import Path

from gates.engines.base import Engine, EngineBuild, KernelSupport, ModelRef
from gates.engines.ort_genai import OrtGenaiEngine
from gates.engines.runner import Runner
from gates.engines.tensorrt_llm import TensorRTLLMEngine
from gates.engines.torch_cpu import TorchEngine
from gates.engines.torch_fp8 import TorchFp8Engine
from gates.engines.torch_int8 import TorchInt8Engine

ENGINES: dict[str, Engine] = {
    "torch": TorchEngine(),
    "torch-int8": TorchInt8Engine(),
    "torch-fp8": TorchFp8Engine(),
    "tensorrt-llm": TensorRTLLMEngine(),
    "onnxruntime-genai": OrtGenaiEngine(),
}
ENGINE_JSON = "engine.json"


def load_runner(path: Path, threads: int) -> Runner:
    """Run a served artifact with the engine that built it (a plain checkpoint: PyTorch)."""
    spec = path / ENGINE_JSON
    backend = json.loads(spec.read_text()).get("backend", "torch") if spec.is_file() else "torch"
    return ENGINES[backend].runner(path, threads)


__all__ = ["ENGINES", "Engine", "EngineBuild", "KernelSupport", "ModelRef", "Runner", "load_runner"]
