"""A gate run on a commit, and its record: what ``gates run`` and a PR event both call.

The verdict goes into the ledger with the build digest it judged, the commit, the GPU
architecture and the pipeline file: what :meth:`gates.promotion.service.PromotionService.promote`
checks against. A ledger that cannot be written keeps the record in the journal.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from gates.config.names import config_key, require_unique_name
from gates.config.parse import PipelineFile
from gates.errors import ExitCode, GatesError
from gates.journal import Journal, retry
from gates.ledger import Ledger
from gates.pipeline import RunOutcome, run_pipeline
from gates.promotion.commit_verdict import run_arch
from gates.promotion.supersede import supersede
from gates.stages import MEASURE_STAGES, Stage


def gate_commit(
    pipeline: PipelineFile,
    artifacts_root: Path,
    ledger: Ledger,
    actor: str,
    pr: int | None,
    sha: str | None,
    env: Mapping[str, str],
    progress: Callable[[str], None] = print,
    output_dir: Path | None = None,
    stages: tuple[Stage, ...] = MEASURE_STAGES,
    config: str | None = None,
) -> RunOutcome:
    """A gate run on a commit, as ``gates run`` and event handling both do it: first void the
    promotion of the PR's previous commit, then run, then record the verdict and the digest it
    judged in the ledger (what :meth:`PromotionService.promote` checks against), under the
    pipeline file's repository-relative path ``config`` (default: relative to the working directory)."""
    name = pipeline.config.name
    require_unique_name(pipeline)  # another file declaring this name must not share its verdicts
    config = config or config_key(pipeline.path, Path.cwd())
    supersede(ledger, name, pipeline.config.promotion, pr, sha, progress)  # the PR moved on
    outcome = run_pipeline(pipeline, artifacts_root, output_dir, progress, env=dict(env), stages=stages)
    arch = run_arch(env)  # one run per architecture: the commit's verdict is their conjunction
    if not record_run(
        ledger, name, outcome, actor, pr, sha, Journal(artifacts_root), progress, arch=arch, config=config
    ):
        outcome = dataclasses.replace(outcome, exit_code=ExitCode.INFRA)  # kept, but not yet where promotion looks
    return outcome


def record_run(
    ledger: Ledger,
    pipeline: str,
    outcome: RunOutcome,
    actor: str,
    pr: int | None,
    sha: str | None,
    journal: Journal | None = None,
    progress: Callable[[str], None] = print,
    budget_s: float = 20.0,
    arch: str | None = None,
    config: str | None = None,
) -> bool:
    """The gate's verdict on a commit, with the candidate digest it judged: what promotion checks against.

    Retried while the ledger is busy; then kept in ``journal`` (replayed by the next command) and
    False returned. Without a journal the InfraError propagates."""
    report = str(outcome.report_md) if outcome.report_md else None
    record: dict[str, Any] = {
        "pr": pr,
        "sha": sha or None,
        "digest": outcome.candidate_digest,
        "report": report,
        "run_dir": str(outcome.run_dir),
        "arch": arch,
        "config": config,
        "at": time.time(),  # when it was decided: a journaled run replayed later keeps this time
    }
    try:
        retry("recording the gate run", lambda: ledger.add_run(pipeline, outcome.verdict, actor, **record), budget_s)
        return True
    except GatesError as exc:
        if journal is None:
            raise
        kept = journal.add(ledger, "run", {"pipeline": pipeline, "verdict": outcome.verdict, "actor": actor, **record})
        progress(f"{exc}\nthe {outcome.verdict} run is kept in {kept}; the next gates command records it")
        return False
