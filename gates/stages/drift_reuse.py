"""One candidate's greedy drift, measured once for several gate runs of the same builds.

`gates search` measures a candidate in rungs, each a whole gate run on a share of the load. The
drift stage's figures do not depend on the load: they are greedy answers (deterministic) to the
same golden prompts from the same two builds. So a gate run given an earlier run's directory
(``DriftStage(reuse=...)``: the search's next rung of the same candidate) takes that run's drift
when everything it depends on is the same — the two build digests, the golden rows and the
prompts as served, the model, optimize, engine, serve and golden sections — and measures afresh
otherwise (a rebuild, an edited prompt file, another thread count), saying why.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from gates.artifacts import canonical_digest
from gates.context import RunContext
from gates.quality.batched import BatchedAgreement
from gates.quality.drift import PromptDrift
from gates.record import BuildResult, PreflightResult

ROWS = "drift.jsonl"
KEY = "drift-key.json"  # what the drift in ROWS was measured on, and the batched-answer check
KEY_VERSION = 1  # bump when what the drift stage measures changes: older runs are not reused
SECTIONS = {"model", "optimize", "engine", "serve", "golden"}  # never load: it only scales the load


def drift_key(ctx: RunContext, prompts: tuple[str, ...]) -> str:
    """The digest of everything the drift stage's figures depend on in this run."""
    build = ctx.need(BuildResult)
    golden = ctx.need(PreflightResult).golden
    return canonical_digest(
        {
            "v": KEY_VERSION,
            "baseline": build.baseline.build_digest,
            "candidate": build.candidate.build_digest,
            "rows": [g.row.model_dump(mode="json") for g in golden],
            "prompts": list(prompts),
            "config": ctx.config.model_dump(mode="json", include=SECTIONS),
        }
    )


def write_key(
    run_dir: Path, key: str, batched: dict[str, BatchedAgreement] | None, reused_from: Path | None = None
) -> None:
    record = {
        "key": key,
        "batched": {arm: dataclasses.asdict(a) for arm, a in batched.items()} if batched is not None else None,
        "reused_from": str(reused_from) if reused_from is not None else None,
    }
    (run_dir / KEY).write_text(json.dumps(record, indent=2))


def _row(data: dict[str, Any]) -> PromptDrift:
    fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return PromptDrift(**fields)


def read_reusable(earlier: Path, key: str) -> tuple[tuple[PromptDrift, ...], dict[str, BatchedAgreement] | None] | str:
    """The earlier run's drift rows and batched check when its key is ``key``; else why not (a str)."""
    try:
        record = json.loads((earlier / KEY).read_text())
        lines = (earlier / ROWS).read_text().splitlines()
    except (OSError, ValueError) as exc:
        return f"{earlier}: no reusable drift ({exc})"
    if record.get("key") != key:
        return f"{earlier}: its drift was measured on other builds, prompts or settings"
    try:
        rows = tuple(_row(json.loads(line)) for line in lines if line.strip())
        batched = record.get("batched")
        arms = {arm: BatchedAgreement(**a) for arm, a in batched.items()} if batched is not None else None
    except (TypeError, ValueError) as exc:  # written by another version of PromptDrift
        return f"{earlier}: its drift rows could not be read back ({exc})"
    return rows, arms
