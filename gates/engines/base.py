"""The engine interface: how an optimized model becomes something Triton serves."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from gates.artifacts import ArtifactStore, EngineBuild, ModelRef, tree_digest
from gates.config.engine import EngineSection
from gates.config.schema import Pipeline

if TYPE_CHECKING:  # numpy: the light core (config checks, the PR planner) imports this module
    from gates.engines.runner import Runner


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


# engine: keys every engine reads; any other key under engine: is an option of the engines that
# declare it (Engine.options), refused with the others
SHARED_OPTIONS = frozenset(
    {"backend", "device", "dtype", "max_batch_size", "max_input_len", "max_output_len", "threads"}
)


@dataclasses.dataclass(frozen=True)
class ConfigProblem:
    """What an engine refuses in a pipeline, at a key path (preflight reports file and line)."""

    keys: tuple[str | int, ...]
    message: str


def formats_rule(name: str, formats: tuple[str, ...], pipeline: Pipeline) -> list[ConfigProblem]:
    """An engine that runs only ``formats`` (its real kernels): the candidate must be one of them."""
    q = pipeline.optimize.quantize
    if q is None or q.format not in formats:
        return [
            ConfigProblem(
                ("optimize", "quantize", "format") if q is not None else ("engine", "backend"),
                f"engine.backend {name!r} runs formats {', '.join(formats)}; optimize.quantize.format is "
                f"{pipeline.quant_format!r} (use engine.backend: torch)",
            )
        ]
    if q.kv_cache != "none":
        return [
            ConfigProblem(
                ("optimize", "quantize", "kv_cache"),
                f"engine.backend {name!r} has no quantized KV cache: set optimize.quantize.kv_cache: none",
            )
        ]
    return []


class Engine(Protocol):
    name: str
    kernels: KernelSupport
    options: frozenset[str]  # the engine: keys beyond SHARED_OPTIONS that this engine reads

    def check_config(self, pipeline: Pipeline) -> list[ConfigProblem]:
        """What this engine refuses in the pipeline (formats it cannot run, options it has not)."""

    def check_available(self) -> None:
        """Raise CapabilityError (with an install or hardware hint) when this machine cannot build."""

    def build(self, store: ArtifactStore, model: ModelRef, cfg: EngineSection) -> EngineBuild: ...

    def write_serving(self, repo: Path, name: str, build: EngineBuild, threads: int) -> Path:
        """Write the built artifact's entry in a Triton model repository (what deploy loads)."""

    def runner(self, path: Path, threads: int) -> Runner:
        """Run a built artifact (in Triton's Python model, and in-process for tests)."""
