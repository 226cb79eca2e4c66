"""Serving engines behind one Protocol, listed in one lazy registry.

An engine builds its artifact, checks the pipeline's ``engine:`` section, writes its Triton
repository entry and runs it (a ``Runner``); adding one is one module and one entry below
(``"name": "module:Class"``). Entries are imported on first use, so the light core (config
checks, the PR planner, ``gates --help``) never imports an engine's runtime.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from gates.artifacts import EngineBuild, ModelRef
from gates.engines.base import Engine, KernelSupport
from gates.registry import LazyRegistry

if TYPE_CHECKING:
    from gates.engines.runner import Runner

ENGINES: LazyRegistry[Engine] = LazyRegistry(
    "engine",
    {
        "torch": "gates.engines.torch_cpu:TorchEngine",
        "torch-int8": "gates.engines.torch_int8:TorchInt8Engine",
        "torch-fp8": "gates.engines.torch_fp8:TorchFp8Engine",
        "tensorrt-llm": "gates.engines.tensorrt_llm:TensorRTLLMEngine",
        "onnxruntime-genai": "gates.engines.ort_genai:OrtGenaiEngine",
    },
)
ENGINE_JSON = "engine.json"


def load_runner(path: Path, threads: int) -> Runner:
    """Run a served artifact with the engine that built it (a plain checkpoint: PyTorch)."""
    spec = path / ENGINE_JSON
    backend = json.loads(spec.read_text()).get("backend", "torch") if spec.is_file() else "torch"
    return ENGINES[backend].runner(path, threads)


__all__ = ["ENGINES", "Engine", "EngineBuild", "KernelSupport", "ModelRef", "load_runner"]
