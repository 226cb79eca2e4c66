"""The engine interface: how an optimized model becomes something Triton serves."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from gates.artifacts import ArtifactStore, EngineBuild, ModelRef
from gates.config.engine import EngineSection

if TYPE_CHECKING:  # numpy: the light core (config checks, the PR planner) imports this module
    from gates.engines.runner import Runner


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
