"""Golden files for what reviewers read: the markdown for PASS, FAIL and INCONCLUSIVE."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gates.report.render import render_html, render_markdown

DATA = Path(__file__).with_name("data")
HOSTILE = "</details><script>alert(1)</script> @org/team #12 | a | b |\n**bold** [x](https://evil.example)"


def _report() -> dict[str, Any]:
    return json.loads((DATA / "report_pass.json").read_text())


def _fail() -> dict[str, Any]:
    r = _report()
    r["verdict"] = "FAIL"
    for g in r["gates"]:
        if g["name"] == "top1_agreement":
            g.update(
                status="fail",
                observed=0.41,
                reason="next-token top-1 agreement 0.41 over 18 golden prompts (below 0.95)",
            )
    r["reason"] = "failed: top1_agreement (next-token top-1 agreement 0.41 over 18 golden prompts (below 0.95))"
    r["drift"]["worst"][0]["candidate_text"] = HOSTILE
    return r


def _inconclusive() -> dict[str, Any]:
    r = _report()
    r.update(
        verdict="INCONCLUSIVE",
        load=None,
        drift=None,
        cost=None,
        gates=[],
        reason="inconclusive: the run did not complete: tritonserver died",
        error="tritonserver died\n  command: tritonserver ...",
    )
    return r


@pytest.mark.parametrize(("name", "make"), [("pass", _report), ("fail", _fail), ("inconclusive", _inconclusive)])
def test_markdown_golden(name: str, make: Callable[[], dict[str, Any]], golden: Callable[[str, str], None]) -> None:
    md = render_markdown(make())
    golden(f"report_{name}.md", md)
    assert md.startswith("<!-- gates:report pipeline=demo -->\n")
    assert len(md) < 65_536


def test_hostile_model_output_renders_inertly() -> None:
    md = render_markdown(_fail())
    assert "alert(1)" not in md
    row = next(line for line in md.splitlines() if "alert&#40;1" in line)
    assert "&lt;/details&gt;&lt;script&gt;alert&#40;1&#41;&lt;/script&gt;" in row
    assert "@\u200borg/team" in row and "#\u200b12" in row and "&#124; a &#124; b &#124;" in row
    assert "&#42;&#42;bold&#42;&#42; &#91;x&#93;&#40;https&#58;//evil.example&#41;" in row
    assert md.count("<details>") == md.count("</details>")
    # every table row keeps its column count: nothing from the model opened a new cell
    assert row.count(" | ") == 6
    html = render_html(_fail())
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_verdict_and_reason_come_first() -> None:
    lines = render_markdown(_fail()).splitlines()
    assert lines[1].startswith("## ❌ gates: **FAIL**")
    assert lines[3].startswith("failed&#58; top1&#95;agreement")


def test_report_copy_is_not_mutated() -> None:
    r = _report()
    before = copy.deepcopy(r)
    render_markdown(r)
    assert r == before
