"""Where and how the models are served: ``engine:`` (the backend that builds and serves both arms,
its device and dtype) and ``serve:`` (a local tritonserver or an existing one)."""

from __future__ import annotations

import os
import re
from enum import StrEnum
from typing import Literal

from pydantic import Field, field_validator

from gates.config.strict import Strict


class EngineSection(Strict):
    # a name in the engine registry (gates/engines/__init__.py; `gates formats` lists them): the
    # engine checks the rest of the pipeline against what it runs (Engine.check_config, at preflight)
    backend: str = Field(default="torch", min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9._-]*$")
    # where the PyTorch engines run and calibration happens (auto: cuda when a CUDA device is
    # visible) and in what dtype the float parts run (null: fp32 on CPU, bf16 on CUDA)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dtype: Literal["bf16", "fp16", "fp32"] | None = None
    max_batch_size: int = Field(default=8, ge=1)
    max_input_len: int = Field(default=256, ge=1)
    max_output_len: int = Field(default=64, ge=1)
    # CPU threads of each served model; null: half the machine's cores each, so the two arms
    # (served side by side) neither starve each other nor oversubscribe the CPU
    threads: int | None = Field(default=None, ge=1, le=1024)
    # options of the engines that declare them (Engine.options; onnxruntime-genai today): the
    # candidate's weights (the baseline is built fp32 by the same builder), MatMulNBits block size,
    # accuracy level (4: int8 activations, the fast integer kernels; 1: fp32 compute) and the
    # builder's quantization algorithm; set for an engine that does not read them, preflight refuses
    precision: Literal["int8", "int4"] = "int4"
    block_size: Literal[16, 32, 64, 128, 256] = 32
    accuracy_level: Literal[1, 2, 3, 4] = 4
    algo: Literal["default", "rtn", "k_quant"] = "default"

    def threads_per_model(self) -> int:
        return self.threads or max(1, (os.cpu_count() or 2) // 2)

    def placement(self, cuda: bool) -> tuple[str, str]:
        """``(device, dtype)`` this engine runs on, given whether CUDA is available here.

        ``cuda`` requested where it is not available is refused by preflight, before model work."""
        device = self.device if self.device != "auto" else ("cuda" if cuda else "cpu")
        return device, self.dtype or ("bf16" if device == "cuda" else "fp32")


class Batching(StrEnum):
    """How a served model takes concurrent requests."""

    ENGINE = "engine"  # the engine's own scheduler batches them (continuous or static, as the engine does)
    OFF = "off"  # one request at a time, in arrival order (a reference, never what is shipped)


class ServeSection(Strict):
    triton: str = "local"
    # concurrent requests go to the engine's own scheduler (gates/engines/batching.py); `off` serves
    # them one at a time, the way no production server does (kept to measure what batching gains)
    batching: Batching = Field(default=Batching.ENGINE, strict=False)  # YAML gives the name as a string
    # sequences the engine runs in one step at most; 0: the engine's default for this machine
    # (engines that cannot be resized report what they run: ONNX Runtime GenAI's CPU scheduler runs 4)
    max_batch: int = Field(default=0, ge=0, le=1024)
    # the KV-cache budget of engines that have one (OpenVINO GenAI's cache_size); null: the engine's default
    kv_cache_gb: float | None = Field(default=None, gt=0, le=4096)
    triton_grpc: str | None = None  # host:port of an existing Triton's gRPC endpoint (default: its host, port 8001)
    startup_timeout_s: float = Field(default=180.0, gt=0)
    baseline_model: str = "baseline"
    candidate_model: str = "candidate"

    @field_validator("batching", mode="before")
    @classmethod
    def _batching(cls, v: object) -> object:
        # YAML 1.1 reads an unquoted `off` as false (and `on` as true): take them as meant
        if isinstance(v, bool):
            return Batching.ENGINE if v else Batching.OFF
        return v

    @field_validator("triton")
    @classmethod
    def _triton(cls, v: str) -> str:
        if v != "local" and not re.match(r"^https?://[^/\s]+(:\d+)?/?$", v):
            raise ValueError("serve.triton must be 'local' or an http(s)://host:port URL of a Triton server")
        return v
