"""Serving engines behind one Protocol, listed in one explicit dict."""

from __future__ import annotations

from gates.engines.base import Engine, EngineBuild, ModelRef
from gates.engines.tensorrt_llm import TensorRTLLMEngine
from gates.engines.torch_cpu import TorchEngine
from gates.engines.torch_int8 import TorchInt8Engine

ENGINES: dict[str, Engine] = {
    "torch": TorchEngine(),
    "torch-int8": TorchInt8Engine(),
    "tensorrt-llm": TensorRTLLMEngine(),
}

__all__ = ["ENGINES", "Engine", "EngineBuild", "ModelRef"]
