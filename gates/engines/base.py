"""The engine interface: how an optimized model becomes something Triton serves."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Protocol

from gates.artifacts import ArtifactStore
from gates.config.schema import EngineSection
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
    digest: str
    reused: bool
    latency_representative: bool
    latency_note: str
    recipe: str = ""  # what the engine itself did to the model (e.g. its own int8 quantization)


class Engine(Protocol):
    name: str

    def check_available(self) -> None:
        """Raise CapabilityError (with an install or hardware hint) when this machine cannot build."""

    def build(self, store: ArtifactStore, model: ModelRef, cfg: EngineSection) -> EngineBuild: ...

    def write_serving(self, repo: Path, name: str, build: EngineBuild, threads: int) -> Path:
        """Write the built artifact's entry in a Triton model repository (what deploy loads)."""

    def runner(self, path: Path, threads: int) -> Runner:
        """Run a built artifact (in Triton's Python model, and in-process for tests)."""
