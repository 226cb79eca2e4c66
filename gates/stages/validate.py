"""``gates validate``: everything preflight checks, without building or serving anything, plus
whether each gate can reach a verdict with the configured load.

The same checks as a run's preflight stage (config and the engine's rules, data files and their
expectations, the model source, quantization format and engine on this machine), then the
request estimate of ``gates.stages.estimate``. The only thing written is the artifact store's
cache of data files that passed their expectations (``validated/``), which runs share.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable
from pathlib import Path

from gates.artifacts import ArtifactStore
from gates.config import load_pipeline
from gates.config.names import config_key, require_unique_name
from gates.config.parse import PipelineFile
from gates.context import RunContext
from gates.ledger import Ledger
from gates.models.placement import cuda_available
from gates.record import PreflightResult
from gates.stages.estimate import RequestEstimate, estimate_points, store_reports
from gates.stages.preflight import PreflightStage


@dataclasses.dataclass(frozen=True)
class Validation:
    pipeline: PipelineFile
    preflight: PreflightResult
    engine: str
    device: str  # where the engine would run here (cpu | cuda)
    estimates: tuple[RequestEstimate, ...]  # one per operating point the run measures

    @property
    def warnings(self) -> tuple[str, ...]:
        lines = [line for e in self.estimates if (line := e.warning())]
        return (*self.preflight.warnings, *lines)


def ledger_reports(ledger: Ledger | None, pf: PipelineFile) -> list[Path]:
    """report.json of this pipeline file's recorded runs, newest first."""
    if ledger is None:
        return []
    key = config_key(pf.path, pf.root)
    runs = [r for r in ledger.runs(pipeline=pf.config.name) if r.run_dir and r.config in (None, key)]
    runs.sort(key=lambda r: (r.at, r.id), reverse=True)
    return [Path(r.run_dir) / "report.json" for r in runs if r.run_dir]


def validate_pipeline(
    path: Path, artifacts: Path, ledger: Ledger | None = None, progress: Callable[[str], None] = lambda _: None
) -> Validation:
    """Check ``path`` as a run's preflight would; bad input raises (exit 2), as in a run."""
    pf = load_pipeline(path)
    require_unique_name(pf)
    # the artifact store only for its cache of data files that passed their expectations (the
    # Great Expectations import alone is seconds); nothing is built, no run directory is made
    with tempfile.TemporaryDirectory(prefix="gates-validate-") as tmp:
        ctx = RunContext(pf, ArtifactStore(artifacts), Path(tmp) / "run", "validate", progress=progress)
        PreflightStage().run(ctx)
        result = ctx.need(PreflightResult)
    device = pf.config.engine.placement(cuda_available())[0]
    reports = [*ledger_reports(ledger, pf), *store_reports(artifacts)]
    estimates = tuple(estimate_points(pf.config, reports, device))
    return Validation(pf, result, pf.config.engine.backend, device, estimates)
