"""Renders report.md (what the PR comment shows) and report.html with jinja2."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2

from gates.config.schema import PIPELINE_NAME
from gates.loadmodes import LOAD_MODES, LoadMode
from gates.machine import describe
from gates.report.charts import (
    mermaid_capacity,
    mermaid_drift,
    mermaid_latency,
    png_capacity,
    png_drift,
    png_latency_cdf,
)
from gates.report.escape import md_inline

TEMPLATES = Path(__file__).with_name("templates")
MARKER = "<!-- gates:report pipeline={name} -->"
ICONS = {"PASS": "✅", "FAIL": "❌", "INCONCLUSIVE": "⚠️"}
STATUS_ICONS = {
    "pass": "✅ pass",
    "fail": "❌ fail",
    "inconclusive": "⚠️ inconclusive",
    "no_data": "⚠️ no data",
    "not_applied": "➖ not applied",
}


def _num(value: Any, fmt: str = ".3g") -> str:
    if value is None:
        return "—"
    if isinstance(value, (int, float)):
        return format(value, fmt)
    return str(value)


def md_url(url: str) -> str:
    """A link target that cannot break out of ``(...)``: http(s) only, everything unsafe percent-encoded."""
    from urllib.parse import quote

    if not url.startswith(("https://", "http://")):
        return "#"
    return quote(url, safe=":/?&=#%.-_~+")


def gate_format(name: str) -> str:
    """How a person reads a gate's observed value and interval (at either operating point)."""
    name = name.removesuffix("@latency")
    if name.endswith(" shift") or name == "cost_saving":
        return "+.1%"
    return {"error_rate": ".2%", "score": ".0f"}.get(name, ".3g")


def ci(iv: dict[str, Any] | None, fmt: str = ".3f") -> str:
    """An estimate with its interval, as "0.821 (0.700 to 0.900)"; "—" when missing."""
    if not iv or iv.get("estimate") is None:
        return "—"
    if iv.get("low") is None or iv.get("high") is None:
        return _num(iv["estimate"], fmt)
    return f"{_num(iv['estimate'], fmt)} ({_num(iv['low'], fmt)} to {_num(iv['high'], fmt)})"


def point_verdict(point: dict[str, Any], gates: list[dict[str, Any]]) -> str:
    """The verdict of one operating point's blocking gates (FAIL over INCONCLUSIVE over PASS)."""
    mine = [g for g in gates if g["name"] in set(point.get("gates", ())) and g.get("blocking", True)]
    statuses = {g["status"] for g in mine}
    if "fail" in statuses:
        return "FAIL"
    if statuses & {"inconclusive", "no_data"}:
        return "INCONCLUSIVE"
    return "PASS" if statuses - {"not_applied"} else "INCONCLUSIVE"


def load_title(load: dict[str, Any]) -> str:
    """The load section's heading, as the run's load mode words it (reports before modes: closed)."""
    if load.get("workloads") == ["trace"] and load.get("mode") == LoadMode.open and load.get("rate") is None:
        return "open loop, trace replay at the trace's own times"
    return LOAD_MODES[load.get("mode") or LoadMode.closed].title(load)


REGRESSED_IN_COMMENT = 20  # the rest are in report.html and report.json


def regressed_tasks(drift: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Golden prompts whose task check the baseline passed and the candidate failed (report.json
    lists every one of them first in drift.worst), for the comment and the HTML report."""
    rows = (drift or {}).get("worst") or []
    return [w for w in rows if w.get("baseline_task_pass") is True and w.get("candidate_task_pass") is False]


def in_gates_table(report: dict[str, Any]) -> set[str]:
    """Names of the gates the gates table lists: the quality table then shows their statistics only
    (each gate's status appears once)."""
    return {str(g.get("name")) for g in report.get("gates") or []}


def _env(autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["md"] = md_inline
    env.filters["num"] = _num
    env.filters["md_url"] = md_url
    env.filters["machine"] = describe
    env.globals.update(
        icons=ICONS,
        status_icons=STATUS_ICONS,
        gate_format=gate_format,
        ci=ci,
        load_title=load_title,
        regressed_tasks=regressed_tasks,
        in_gates_table=in_gates_table,
        regressed_in_comment=REGRESSED_IN_COMMENT,
        point_verdict=point_verdict,
    )
    return env


def report_marker(name: str) -> str:
    """The sticky comment's marker, exactly as ``gates publish`` searches for it.

    A pipeline name (``[a-z0-9._-]``) holds no markup and cannot close the comment, so it is kept
    as is: escaping ``_`` made the marker differ from the one searched for (a new comment per run).
    """
    return MARKER.format(name=name if PIPELINE_NAME.fullmatch(name) else md_inline(name))


def render_markdown(report: dict[str, Any]) -> str:
    marker = report_marker(str(report["pipeline"]))
    charts = {
        "latency": mermaid_latency(report["load"]) if report.get("load") else "",
        "drift": mermaid_drift(report["drift"].get("per_prompt", [])) if report.get("drift") else "",
        "capacity": mermaid_capacity(report["capacity"]) if report.get("capacity") else "",
    }
    return _env(False).get_template("report.md.j2").render(r=report, marker=marker, charts=charts)


COMMENT_LIMIT = 65_536  # GitHub's limit on a comment body (and a check run summary)
TRIMMED = "<details><summary>{title} (trimmed to fit GitHub's comment limit: see the full report)</summary></details>"


def fit_comment(markdown: str, limit: int = COMMENT_LIMIT) -> str:
    """Fit under GitHub's limit by emptying ``<details>`` blocks from the last one up.

    The verdict, the reason and the gates table come before any ``<details>`` block, so they are
    never trimmed; if even that does not fit, the text is cut with a note at the end.
    """
    import re

    blocks = list(re.finditer(r"<details><summary>(.*?)</summary>.*?</details>", markdown, flags=re.S))
    for m in reversed(blocks):
        if len(markdown) <= limit:
            break
        markdown = markdown[: m.start()] + TRIMMED.format(title=m.group(1)) + markdown[m.end() :]
    if len(markdown) > limit:
        note = "\n\n… (report cut to fit GitHub's comment limit: see the full report)\n"
        markdown = markdown[: limit - len(note)] + note
    return markdown


def render_html(report: dict[str, Any], latency_samples: dict[str, Any] | None = None) -> str:
    """Self-contained HTML: the PNG plots are embedded as data URIs."""
    images = {
        "latency_cdf": png_latency_cdf(latency_samples) if latency_samples else None,
        "drift": png_drift(report["drift"].get("per_prompt", [])) if report.get("drift") else None,
        "capacity": png_capacity(report["capacity"]) if report.get("capacity") else None,
    }
    return _env(True).get_template("report.html.j2").render(r=report, images=images)


def minimal_markdown(report: dict[str, Any], error: str) -> str:
    """The verdict and its reason alone, for when the full report cannot be rendered."""
    return (
        f"{report_marker(str(report.get('pipeline', '')))}\n## gates: **{md_inline(str(report.get('verdict')))}** — "
        f"{md_inline(str(report.get('pipeline', '')))}\n\n{md_inline(str(report.get('reason', '')))}\n\n"
        f"The full report could not be rendered: {md_inline(error)} (report.json has every figure).\n"
    )


def minimal_html(report: dict[str, Any], error: str) -> str:
    from html import escape

    return (
        "<!doctype html><meta charset=utf-8><title>gates report</title>"
        f"<h1>gates: {escape(str(report.get('verdict')))} — {escape(str(report.get('pipeline', '')))}</h1>"
        f"<p>{escape(str(report.get('reason', '')))}</p>"
        f"<p>The full report could not be rendered: {escape(error)} (report.json has every figure).</p>\n"
    )
