"""The engine interface: how an optimized model becomes something Triton serves."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Protocol

from gates.artifacts import ArtifactStore, tree_digest
from gates.config.engine import EngineSection
from gates.engines.runner import Runner


@dataclasses.dataclass(frozen=True)
class ModelRef:
    """A model artifact: where it is and the digest of what is in it."""

    role: str  # baseline | candidate
    path: Path
    digest: str
    format: str  # quantization format, "none" for the base model
    quant_path: str  # "real" | "simulated"


@dataclasses.dataclass(frozen=True)
class EngineBuild:
    backend: str
    model: ModelRef
    serve_path: Path  # what the Triton model loads
    digest: str  # the store's key: a digest of the build's *inputs* (model digest, options, versions)
    reused: bool
    latency_representative: bool
    latency_note: str
    recipe: str = ""  # what the engine itself did to the model (e.g. its own int8 quantization)
    device: str = "cpu"  # where the served model runs: cpu | cuda (Triton's instance group follows it)
    dtype: str = "fp32"  # the float dtype of its non-quantized parts: fp32 | bf16 | fp16
    # what the engine itself quantized, when it did (e.g. onnxruntime-genai's builder): format, by, options
    quantization: dict[str, Any] = dataclasses.field(default_factory=dict)
    # sha256 over every file of serve_path (what Triton's model loads): the identity of what is
    # served, set by :func:`identify` after the build; "" until then (never promoted)
    build_digest: str = ""


def identify(build: EngineBuild) -> EngineBuild:
    """``build`` with its ``build_digest``: the content of what is served, to the byte. Two builds
    of one checkpoint (fp32 and int8, or int8 and int4) differ here even where their source
    model's digest is the same; a directory served as it is has its own content digest."""
    if build.serve_path == build.model.path:  # served as it is: its digest is the model's (the same tree)
        return dataclasses.replace(build, build_digest=build.model.digest)
    return dataclasses.replace(build, build_digest=tree_digest(build.serve_path))


@dataclasses.dataclass(frozen=True)
class KernelSupport:
    """What an engine runs on real low-precision kernels, and where (``gates formats`` reads it).

    ``formats`` maps a quantization format to the least CUDA compute capability its kernels need
    on a GPU (``(0, 0)``: any CUDA device). ``cpu``: the same formats run on real kernels on CPU."""

    kernel: str  # what computes the products, in words
    formats: dict[str, tuple[int, int]] = dataclasses.field(default_factory=dict)
    cpu: bool = False
    cuda: bool = False
    note: str = ""

    def runs(self, fmt: str, capability: tuple[int, int] | None) -> bool:
        """Whether ``fmt`` runs on real kernels on a machine with this CUDA capability (None: CPU only)."""
        if fmt not in self.formats:
            return False
        if capability is None:
            return self.cpu
        return self.cuda and capability >= self.formats[fmt]


class Engine(Protocol):
    name: str
    kernels: KernelSupport

    def check_available(self) -> None:
        """Raise CapabilityError (with an install or hardware hint) when this machine cannot build."""

    def build(self, store: ArtifactStore, model: ModelRef, cfg: EngineSection) -> EngineBuild: ...

    def write_serving(self, repo: Path, name: str, build: EngineBuild, threads: int) -> Path:
        """Write the built artifact's entry in a Triton model repository (what deploy loads)."""

    def runner(self, path: Path, threads: int) -> Runner:
        """Run a built artifact (in Triton's Python model, and in-process for tests)."""
