"""The stages of a run, listed explicitly (no registration by import side effects)."""

from __future__ import annotations

from typing import Protocol

from gates.context import RunContext


class Stage(Protocol):
    name: str

    def run(self, ctx: RunContext) -> None:
        """Read earlier results from ``ctx`` and ``ctx.put`` this stage's frozen result."""


from gates.stages.build import BuildStage  # noqa: E402
from gates.stages.deploy import DeployStage  # noqa: E402
from gates.stages.drift import DriftStage  # noqa: E402
from gates.stages.load import LoadStage  # noqa: E402
from gates.stages.optimize import OptimizeStage  # noqa: E402
from gates.stages.preflight import PreflightStage  # noqa: E402
from gates.stages.quality import QualityStage  # noqa: E402

# The measurement stages, in order. Judge, report and publish run after them (see pipeline.py)
# because they also run when a measurement stage failed.
MEASURE_STAGES: tuple[Stage, ...] = (
    PreflightStage(),
    OptimizeStage(),
    BuildStage(),
    DeployStage(),
    LoadStage(),
    DriftStage(),
    QualityStage(),
)
