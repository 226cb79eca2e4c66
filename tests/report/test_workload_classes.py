"""A workload's per-class figures in report.json (schema 5) and in the comment's load section."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from gates.errors import InfraError
from gates.loadgen.classes import class_figures
from gates.report.assemble import _clean
from gates.report.model import report_json
from gates.report.render import render_markdown
from gates.report.schema import SCHEMA_PATH

DATA = Path(__file__).with_name("data")


def _report_with_classes() -> dict[str, Any]:
    report = dict(json.loads((DATA / "report_pass.json").read_text()))
    rec = [
        {
            "arm": arm,
            "t_start_s": 1.0,
            "latency_ms": 50.0 + i,
            "ttft_ms": 10.0 + i,
            "itl_ms": math.nan,
            "ok": True,
            "output_tokens": 3,
            "labels": f"turn={turn}",
        }
        for i, (arm, turn) in enumerate([("baseline", 1), ("candidate", 1), ("baseline", 2), ("candidate", 2)])
    ]
    report["load"]["workloads"] = ["multi_turn"]
    report["load"]["classes"] = [c.to_json() for c in class_figures(rec, 0.0, 10.0)]
    return dict(_clean(report))  # as assemble writes it: NaN (no ITL of one-token requests) is null


def test_classes_fit_the_schema_and_render_per_turn() -> None:
    report = _report_with_classes()
    text = report_json(report)  # the runtime check: NaN becomes null, every key is known
    jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text())).validate(json.loads(text))
    md = render_markdown(json.loads(text))
    assert "Per request class (workload multi&#95;turn;" in md
    assert "| turn 2 | 1 / 1 | 12.0 / 13.0 |" in md


def test_an_unknown_class_key_fails_the_report() -> None:
    report = _report_with_classes()
    report["load"]["classes"][0]["key"] = "colour"
    with pytest.raises(InfraError, match="classes"):
        report_json(report)
