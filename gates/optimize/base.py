"""What an optimization recipe is: a step that builds a model artifact from its parent.

A recipe owns its config section (``optimize.<key>``), the data files it reads (the planning job
re-gates pipelines whose data changed), what its artifact's cache key is made of, how to build it,
and how the result is named. The optimize stage runs the recipes of ``gates.optimize.recipes.RECIPES``
in order; adding one is a module and a dict entry.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from gates.artifacts import ModelRef
from gates.config.parse import PipelineFile
from gates.config.schema import OptimizeSection
from gates.quality.golden import Sample


@dataclasses.dataclass(frozen=True)
class RecipeInput:
    base: ModelRef  # the unoptimized model (distillation's teacher)
    parent: ModelRef  # what the previous step built (the base for the first step)
    pipeline: PipelineFile  # data paths resolve against it
    calibration: tuple[Sample, ...]  # golden.calibration rows, validated by preflight
    quant_path: str  # "real" | "simulated", as preflight found for this machine
    progress: Callable[[str], None]
    device: str = "cpu"  # where calibration or training runs: the engine's placement (a GPU runner's GPU)


def save_hf(model: Any, tokenizer: Any, out: Path) -> None:
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


class Recipe(Protocol):
    kind: str  # the step's name in reports ("prune") and its config key (optimize.prune)
    artifact_kind: str  # the artifact store's kind ("model-pruned")

    def section(self, cfg: OptimizeSection) -> Any | None:
        """This recipe's config section, or None when the pipeline does not ask for it."""

    def data_files(self, section: Any) -> tuple[str, ...]:
        """The data files (relative to the repository) the recipe reads."""

    def cache_key(self, section: Any, inp: RecipeInput) -> dict[str, Any]:
        """Everything the artifact depends on besides tool versions (added by the stage)."""

    def build(self, section: Any, inp: RecipeInput, out: Path) -> dict[str, Any]:
        """Build the artifact into ``out``; returns manifest entries (``measured`` …)."""

    def label(self, section: Any, parent_format: str) -> str:
        """The candidate's format after this step (what reports call it)."""

    def quant_path(self, section: Any, inp: RecipeInput) -> str:
        """Whether this step's numerics are real kernels or a simulation."""
