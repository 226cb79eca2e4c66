"""report.json's contract: the committed JSON Schema is the one the model generates, its version is
bumped whenever it changes, and a report that drifts from it fails (the schema and the runtime check).

The golden reports are validated where they are rendered (tests/report/test_render.py).
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from gates.errors import InfraError
from gates.report.assemble import SCHEMA_VERSION as WRITTEN_VERSION
from gates.report.model import SCHEMA_HISTORY, SCHEMA_VERSION, report_json
from gates.report.schema import SCHEMA_PATH, digest, main, schema_text

DATA = Path(__file__).with_name("data")


def _validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _report() -> dict[str, Any]:
    return dict(json.loads((DATA / "report_pass.json").read_text()))


def test_the_committed_schema_is_the_one_the_model_generates() -> None:
    assert SCHEMA_PATH.read_text() == schema_text(), "stale: run python -m gates.report.schema"
    assert main(["--check"]) == 0


def test_the_schema_version_is_bumped_whenever_the_schema_changes() -> None:
    # a changed model regenerates a schema with another hash: recording it needs a new version
    assert SCHEMA_HISTORY.get(SCHEMA_VERSION) == digest(SCHEMA_PATH.read_text()), (
        f"report.schema.json changed: set Report.schema_version to {SCHEMA_VERSION + 1} in gates/report/model.py, "
        f"run python -m gates.report.schema and record SCHEMA_HISTORY[{SCHEMA_VERSION + 1}] (keep the older ones)"
    )
    assert sorted(SCHEMA_HISTORY) == list(range(2, SCHEMA_VERSION + 1))  # no version skipped or dropped
    assert len(set(SCHEMA_HISTORY.values())) == len(SCHEMA_HISTORY)  # no version reused for another schema
    assert json.loads(SCHEMA_PATH.read_text())["properties"]["schema_version"]["const"] == SCHEMA_VERSION
    assert WRITTEN_VERSION == SCHEMA_VERSION  # what assemble writes into report.json


def test_a_report_as_gates_writes_it_is_valid() -> None:
    report = _report()
    _validator().validate(report)
    assert json.loads(report_json(report)) == report


def _without(path: str) -> Callable[[dict[str, Any]], None]:
    def edit(r: dict[str, Any]) -> None:
        *parents, key = path.split(".")
        for p in parents:
            r = r[p]
        del r[key]

    return edit


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(r: dict[str, Any]) -> None:
        *parents, key = path.split(".")
        node: Any = r
        for p in parents:
            node = node[int(p)] if p.isdigit() else node[p]
        node[key] = value

    return edit


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (_without("verdict"), "verdict: Field required"),
        (_without("load.stopped"), "load.stopped: Field required"),
        (_set("gates.0.blocking", "yes"), "gates[0].blocking"),
        (_set("verdict", "MAYBE"), "verdict"),
        (_set("load.baseline.requests", "76"), "load.baseline.requests"),
        (_set("drift.worst.0.exact_match", None), "drift.worst[0].exact_match"),
        (_set("baseline.served_by", "ab" * 32), "baseline.served_by: Extra inputs are not permitted"),
        (_set("quality", {}), "quality"),
    ],
)
def test_a_report_that_drifts_from_the_schema_fails_naming_the_key(
    edit: Callable[[dict[str, Any]], None], named: str
) -> None:
    report = _report()
    edit(report)
    assert not _validator().is_valid(report)
    with pytest.raises(InfraError, match=r"report\.json does not match its schema") as exc:
        report_json(report)
    assert named in str(exc.value)


def test_a_number_that_is_not_finite_is_refused_not_written_as_nan() -> None:
    report = _report()
    report["drift"]["mean_kl"] = math.nan  # assemble writes null; NaN is not JSON
    with pytest.raises(InfraError, match="Out of range float values are not JSON compliant"):
        report_json(report)


def test_open_objects_take_new_keys_and_optional_keys_may_be_absent() -> None:
    report = _report()
    report["load"]["generator"]["new_figure"] = 1.5  # the generator's own summary is open
    report["load"]["stopped"] |= {"looks": [{"n_baseline": 50, "n_candidate": 50, "fraction": 0.5}], "detail": "x"}
    report["candidate"]["steps"][0]["measured"] = {"anything": [1, 2]}
    report["links"] = {}
    before = copy.deepcopy(report)
    _validator().validate(report)
    report_json(report)
    assert report == before  # checking does not change what is written
