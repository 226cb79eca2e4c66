"""The report stage writes report.json only when it matches its schema, and fails closed otherwise."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import gates.stages.report
from gates.config import load_pipeline
from gates.context import RunContext
from gates.errors import ExitCode
from gates.pipeline import run_pipeline
from gates.report.schema import SCHEMA_PATH
from gates.stages.preflight import PreflightStage

CFG = "name: unit\nmodel:\n  source: builtin:tiny-llama\ngolden:\n  suites: [golden_prompts/demo.jsonl]\n"


def test_the_report_a_run_writes_matches_the_schema(write_pipeline: Callable[..., Path], tmp_path: Path) -> None:
    pf = load_pipeline(write_pipeline(CFG))
    run_pipeline(pf, tmp_path / "a", tmp_path / "run", lambda s: None, stages=(PreflightStage(),))
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text())).validate(report)
    assert report["quantization"]["path"] is not None  # preflight ran: not only the empty report


def test_a_producer_that_drifts_from_the_schema_fails_the_run_closed(
    write_pipeline: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = gates.stages.report.build_report

    def drifted(ctx: RunContext) -> dict[str, Any]:
        report = real(ctx)
        report["baseline"]["served_by"] = "ab" * 32  # a key added to the report but not to the model
        return report

    monkeypatch.setattr(gates.stages.report, "build_report", drifted)
    pf = load_pipeline(write_pipeline(CFG))
    lines: list[str] = []
    out = run_pipeline(pf, tmp_path / "a", tmp_path / "run", lines.append, stages=(PreflightStage(),))
    # the run ends in an infrastructure error (exit 3), its verdict kept in run.json for the ledger
    assert out.exit_code == ExitCode.INFRA and json.loads((tmp_path / "run" / "run.json").read_text())["verdict"]
    assert not (tmp_path / "run" / "report.json").exists()  # nothing a consumer would read as a verdict
    kept = tmp_path / "run" / "report.unchecked.json"
    said = "\n".join(lines)
    assert "baseline.served_by: Extra inputs are not permitted" in said and str(kept) in said
    assert json.loads(kept.read_text())["baseline"]["served_by"] == "ab" * 32
