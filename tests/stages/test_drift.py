"""The drift stage given an earlier run of the same candidate (gates search's previous rung): it
takes that run's drift only when the builds, prompts and settings are the same, and serves
nothing then; anything else is measured again. The measurement itself runs against real servers
in tests/search/test_search_integration.py."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from gates.artifacts import ArtifactStore, EngineBuild, ModelRef
from gates.config import load_pipeline
from gates.context import RunContext
from gates.quality.batched import BatchedAgreement
from gates.quality.drift import PromptDrift
from gates.quality.golden import GoldenPrompt, GoldenRow
from gates.record import BuildResult, DriftResult, OptimizeResult, PreflightResult
from gates.stages.drift import DriftStage
from gates.stages.drift_reuse import KEY, ROWS, drift_key, write_key

CFG = "name: unit\nmodel:\n  source: builtin:tiny-llama\ngolden:\n  suites: [golden_prompts/demo.jsonl]\n"
GOLDEN = (GoldenPrompt("demo.jsonl", 1, GoldenRow(id="a", prompt="Say hi", tags=["greeting"])),)
ROW = PromptDrift(
    id="a",
    suite="demo.jsonl",
    line=1,
    tags=("greeting",),
    weight=1.0,
    prompt="Say hi",
    baseline_text=" hi there",
    candidate_text=" hi",
    exact_match=False,
    edit_distance=6,
    first_divergence=1,
    positions=4,
    top1_agreement=0.75,
    mean_kl=0.02,
    max_kl=0.05,
    baseline_task_pass=None,
    candidate_task_pass=None,
    candidate_tokens=2,
)
BATCHED = {"baseline": BatchedAgreement(1, 1.0, 1.0, 0), "candidate": BatchedAgreement(1, 0.0, 0.5, 0)}


def context(
    write_pipeline: Callable[..., Path], run_dir: Path, candidate_digest: str = "c" * 64, text: str = CFG
) -> tuple[RunContext, list[str]]:
    lines: list[str] = []
    pf = load_pipeline(write_pipeline(text))
    ctx = RunContext(pf, ArtifactStore(run_dir.parent / "a"), run_dir, "r", lines.append)
    run_dir.mkdir(parents=True)
    ref = ModelRef("candidate", Path("/m"), "m" * 64, "none", "real")
    ctx.put(PreflightResult(GOLDEN, (), "real", ""))
    ctx.put(OptimizeResult(ref, ref, True, 0.0, (), "", ("<user>Say hi",)))
    base = EngineBuild("torch", ref, Path("/b"), "k" * 64, True, True, "", build_digest="b" * 64)
    ctx.put(BuildResult(base, dataclasses.replace(base, build_digest=candidate_digest), ""))
    return ctx, lines


def measured(write_pipeline: Callable[..., Path], run_dir: Path) -> None:
    """What the drift stage leaves in a run where it measured ROW (and the batched check)."""
    ctx, _ = context(write_pipeline, run_dir)
    (run_dir / ROWS).write_text(json.dumps(dataclasses.asdict(ROW)) + "\n")
    write_key(run_dir, drift_key(ctx, ("<user>Say hi",)), BATCHED)


def test_the_next_rung_takes_the_earlier_drift_and_serves_nothing(
    write_pipeline: Callable[..., Path], tmp_path: Path
) -> None:
    measured(write_pipeline, tmp_path / "rung-0")
    ctx, _ = context(write_pipeline, tmp_path / "rung-1")
    DriftStage(reuse=tmp_path / "rung-0").run(ctx)  # no DeployResult in ctx: measuring would raise
    drift = ctx.need(DriftResult)
    assert drift.rows == (ROW,) and drift.batched == BATCHED and drift.summary.top1_agreement == 0.75
    assert "reused from" in drift.note and str(tmp_path / "rung-0") in drift.note
    assert (tmp_path / "rung-1" / ROWS).read_text() == (tmp_path / "rung-0" / ROWS).read_text()
    record = json.loads((tmp_path / "rung-1" / KEY).read_text())  # the rung after can take it in turn
    assert record["reused_from"] == str(tmp_path / "rung-0") and record["key"] == drift_key(ctx, ("<user>Say hi",))


@pytest.mark.parametrize(
    "change",
    ["candidate build", "golden settings", "engine threads", "no earlier drift"],
)
def test_anything_the_drift_depends_on_changed_is_measured_again(
    write_pipeline: Callable[..., Path], tmp_path: Path, change: str
) -> None:
    if change != "no earlier drift":
        measured(write_pipeline, tmp_path / "rung-0")
    text = {
        "golden settings": CFG + "  top_k: 5\n",
        "engine threads": CFG + "engine:\n  threads: 1\n",
    }.get(change, CFG)
    digest = "d" * 64 if change == "candidate build" else "c" * 64
    ctx, lines = context(write_pipeline, tmp_path / "rung-1", digest, text)
    with pytest.raises(RuntimeError, match="deploy"):  # it measures: that needs the served models (none here)
        DriftStage(reuse=tmp_path / "rung-0").run(ctx)
    assert any(line.startswith("drift: measured:") for line in lines), lines


def test_the_load_does_not_change_the_key(write_pipeline: Callable[..., Path], tmp_path: Path) -> None:
    a, _ = context(write_pipeline, tmp_path / "r0")
    b, _ = context(write_pipeline, tmp_path / "r1", text=CFG + "load:\n  duration_s: 7\n  users: 3\n")
    assert drift_key(a, ("p",)) == drift_key(b, ("p",)) != drift_key(a, ("q",))
