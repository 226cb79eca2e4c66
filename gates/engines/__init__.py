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
from gates.config.parse import PipelineFile
from gates.engines.base import SHARED_OPTIONS, ConfigProblem, Engine, KernelSupport
from gates.errors import ConfigError, GatesError
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
        "openvino": "gates.engines.openvino:OpenVinoEngine",
    },
)
ENGINE_JSON = "engine.json"


def engine_for(pf: PipelineFile) -> Engine:
    """The pipeline's engine, after it checked the pipeline: ConfigError (exit 2) naming file, key and line."""
    backend = pf.config.engine.backend
    if backend not in ENGINES:
        raise ConfigError(
            f"{pf.where('engine', 'backend')}: engine.backend {backend!r} is not a registered engine "
            f"(engines: {', '.join(ENGINES)})",
            str(pf.path),
        )
    engine = ENGINES[backend]
    problems = list(engine.check_config(pf.config))
    for key in sorted(pf.config.engine.model_fields_set - SHARED_OPTIONS - engine.options):
        others = [name for name in ENGINES if key in _declared_options(name)]
        problems.append(
            ConfigProblem(
                ("engine", key),
                f"engine.{key} is an option of {', '.join(others) or 'no engine'}, not of engine {backend!r}",
            )
        )
    if problems:
        where = [f"{pf.where(*p.keys)}: at key {'.'.join(map(str, p.keys))}: {p.message}" for p in problems]
        raise ConfigError("\n".join(where), str(pf.path))
    return engine


def _declared_options(name: str) -> frozenset[str]:
    try:
        return ENGINES[name].options
    except GatesError:  # an entry that cannot load declares nothing here
        return frozenset()


def load_runner(path: Path, threads: int) -> Runner:
    """Run a served artifact with the engine that built it (a plain checkpoint: PyTorch)."""
    spec = path / ENGINE_JSON
    backend = json.loads(spec.read_text()).get("backend", "torch") if spec.is_file() else "torch"
    return ENGINES[backend].runner(path, threads)


__all__ = [
    "ENGINES",
    "ConfigProblem",
    "Engine",
    "EngineBuild",
    "KernelSupport",
    "ModelRef",
    "engine_for",
    "load_runner",
]
