"""The search's report: report.json (``search: {candidates, front, recommended}``), report.md (a
table and a text chart of the front) and report.html (the front as an SVG plot, each point linked
to its own gate report), in the search directory; and the PR comment, as the gate posts its own.

A report of its own (``"kind": "gates-search"``, ``schema_version`` 1): the gate's report.json
(gates/report/model.py) is unchanged.
"""

from __future__ import annotations

import dataclasses
import html
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from scipy.stats import norm

from gates.github.client import GitHubTarget
from gates.github.publish import publish_report
from gates.report.escape import md_inline
from gates.report.render import report_marker
from gates.search.run import CandidateResult, SearchResult

SCHEMA_VERSION = 1


@dataclasses.dataclass(frozen=True)
class SearchReport:
    json: Path
    markdown: Path
    html: Path


def _interval(r: CandidateResult, level: float) -> dict[str, float | None]:
    """Cost over the baseline's, with its two-sided interval at ``level`` (exp of the log interval)."""
    o = r.observation
    if o is None or o.cost >= 1e8:
        return {"estimate": None, "low": None, "high": None}
    z = float(norm.isf((1 - level) / 2)) * (o.cost_se if o.cost_se < 1e8 else math.inf)
    return {
        "estimate": math.exp(o.cost),
        "low": math.exp(o.cost - z) if math.isfinite(z) else None,
        "high": math.exp(o.cost + z) if math.isfinite(z) else None,
    }


def _link(r: CandidateResult, base: Path) -> str | None:
    last = r.last
    if last is None:
        return None
    page = Path(last.run_dir) / "report.html"
    return os.path.relpath(page, base) if page.exists() else None


def report_dict(result: SearchResult) -> dict[str, Any]:
    rule = result.rule
    level = 1 - rule.cost_error
    base = result.directory
    candidates = []
    for r in result.candidates:
        last = r.last
        candidates.append(
            {
                "name": r.name,
                "values": r.values,
                "fate": r.fate.value,
                "quality": r.quality.value,
                "verdict": r.verdict or None,
                "share_measured": r.spent,
                "rungs": len(r.rungs),
                "cost_ratio": _interval(r, level),
                "objective": {
                    "candidate": last.candidate_value if last else None,
                    "baseline": last.baseline_value if last else None,
                },
                # none where nothing was measured (a run that failed before its drift: counted as a failed gate)
                "quality_loss": r.observation.drop
                if r.observation and r.observation.drop < 1e8 and last and math.isfinite(last.drop)
                else None,
                "margin": last.margin if last else None,
                "digest": last.digest if last else None,
                "stopped_before_quality": last.stopped or None if last else None,  # gates/search/stop.py
                "report": _link(r, base),
                "pipeline": os.path.relpath(r.pipeline_yaml, base),
            }
        )
    rec = next((c for c in candidates if c["name"] == result.recommended), None)
    baselines = {r.last.baseline_digest for r in result.candidates if r.last and r.last.baseline_digest}
    return {
        "kind": "gates-search",
        "schema_version": SCHEMA_VERSION,
        "pipeline": result.pipeline.config.name,
        "config_path": str(result.pipeline.path),
        "objective": result.space.section.objective.value,
        # ratio: cost_ratio is candidate / its baseline; own: the candidates' baselines differ (e.g.
        # engine.backend is an axis), so cost_ratio is the candidate's own objective value
        "cost_scale": "own" if len(baselines) > 1 else "ratio",
        "verdict": "PASS" if rec else "FAIL",
        "reason": _reason(result),
        "rule": {
            "rungs": list(rule.rungs),
            "spending": rule.spending,
            "false_recommend": rule.false_recommend,
            "cost_error": rule.cost_error,
            "futility": rule.futility,
            "miss_error": rule.miss_error,
            "cost_interval_level": level,
        },
        "time": {
            "measured": result.time_used,
            "full": result.time_full,
            "ratio": result.time_used / result.time_full if result.time_full else None,
            "wall_s": round(result.wall_s, 3),  # this invocation
            # every gate run of the search, over all its invocations (each run.json's durations_s)
            "gate_runs_s": round(_gate_runs_s(result), 3),
            "out_of_time": result.out_of_time,
        },
        "search": {
            "candidates": candidates,
            "front": list(result.front),
            "recommended": None
            if rec is None
            else {
                **rec,
                "ready_pipeline": os.path.relpath(result.recommended_yaml, base) if result.recommended_yaml else None,
            },
        },
    }


def _gate_runs_s(result: SearchResult) -> float:
    total = 0.0
    for r in result.candidates:
        for rung in r.rungs:
            try:
                durations = json.loads((Path(rung.run_dir) / "run.json").read_text()).get("durations_s") or {}
            except (OSError, ValueError):
                continue
            total += sum(v for v in durations.values() if isinstance(v, (int, float)))
    return total


def _reason(result: SearchResult) -> str:
    if result.recommended is None:
        return "no candidate passed every gate with a quality loss within the margin"
    rec = next(r for r in result.candidates if r.name == result.recommended)
    return f"the cheapest candidate that passes every gate: {rec.label} ({rec.name})"


def _error_rates(rule: dict[str, Any]) -> str:
    return (
        "Error rates (one-sided, over the whole search): a recommendation beyond the margin ≤ "
        f"{rule['false_recommend']}, a candidate stopped as dearer when it is not ≤ {rule['cost_error']}, "
        f"a candidate with a loss within {rule['futility']:g} × the margin stopped as futile ≤ {rule['miss_error']} "
        f"({rule['spending']} spending over rungs {rule['rungs']}; docs/search.md)."
    )


def _bar(ratio: float | None, width: int = 30) -> str:
    if ratio is None:
        return ""
    return "█" * max(1, min(width * 2, round(ratio * width)))


def render_markdown(report: dict[str, Any]) -> str:
    s = report["search"]
    front, rec = set(s["front"]), (s["recommended"] or {}).get("name")
    lines = [
        report_marker(comment_name(str(report["pipeline"]))),  # the sticky comment's, as the gate's
        f"## gates search: {md_inline(report['pipeline'])} — {report['verdict']}",
        "",
        md_inline(report["reason"]),
        "",
        f"Objective: `{report['objective']}` ("
        + (
            "candidate / baseline"
            if report["cost_scale"] == "ratio"
            else "each candidate's own value: the baselines differ"
        )
        + f", interval at {report['rule']['cost_interval_level']:.0%}); "
        f"quality: non-inferiority of the top-1 agreement loss against the margin. "
        f"Measured {report['time']['measured']:.2f} of {report['time']['full']:.0f} candidates' full loads "
        f"({report['time']['ratio']:.0%}); gate runs {report['time']['gate_runs_s'] / 60:.1f} min in all, "
        f"this invocation {report['time']['wall_s'] / 60:.1f} min"
        + (" (stopped by search.max_minutes)" if report["time"]["out_of_time"] else "")
        + ".",
        "",
        _error_rates(report["rule"]),
        "",
        f"| candidate | values | {'cost ratio' if report['cost_scale'] == 'ratio' else 'cost'} | interval | "
        "quality loss | quality | gates | stopped | measured | |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in s["candidates"]:
        cr = c["cost_ratio"]
        est = f"{cr['estimate']:.3f}" if cr["estimate"] is not None else "—"
        iv = f"[{cr['low']:.3f}, {cr['high']:.3f}]" if cr["low"] is not None and cr["high"] is not None else "—"
        loss = f"{c['quality_loss']:.3f} (margin {c['margin']:.3f})" if c["quality_loss"] is not None else "—"
        values = ", ".join(f"{k}={v}" for k, v in c["values"].items())
        mark = "**recommended**" if c["name"] == rec else ("front" if c["name"] in front else "")
        name = f"[{c['name']}]({c['report'].replace('.html', '.md')})" if c["report"] else c["name"]
        lines.append(
            f"| {name} | {md_inline(values)} | {est} | {iv} | {loss} | {c['quality']} | {c['verdict'] or '—'} | "
            f"{c['fate']}{' (after its load)' if c['stopped_before_quality'] else ''} | {c['share_measured']:.0%} | "
            f"{mark} |"
        )
    lines += ["", "<details><summary>cost ratio by candidate (text chart; * front, ★ recommended)</summary>", "", "```"]
    for c in sorted(s["candidates"], key=lambda c: c["cost_ratio"]["estimate"] or math.inf):
        tag = "★" if c["name"] == rec else ("*" if c["name"] in front else " ")
        est = c["cost_ratio"]["estimate"]
        lines.append(
            f"{tag} {c['name'][-8:]} {c['quality']:<12} {_bar(est)} {est:.3f}"
            if est is not None
            else f"{tag} {c['name'][-8:]} unmeasured"
        )
    lines += ["```", "", "</details>", ""]
    if s["recommended"]:
        lines += [f"Ready pipeline for the recommended configuration: `{s['recommended']['ready_pipeline']}`", ""]
    return "\n".join(lines)


def render_html(report: dict[str, Any]) -> str:
    s = report["search"]
    front, rec = set(s["front"]), (s["recommended"] or {}).get("name")
    pts = [c for c in s["candidates"] if c["cost_ratio"]["estimate"] is not None and c["quality_loss"] is not None]
    w, h, pad = 640, 400, 50
    xs: list[float] = [c["cost_ratio"]["estimate"] for c in pts] + [c["cost_ratio"]["low"] or 0 for c in pts] + [1.0]
    ys: list[float] = [c["quality_loss"] for c in pts] + [c["margin"] or 0 for c in pts] + [0.0]
    x0: float = min(xs) * 0.95
    x1: float = max([c["cost_ratio"]["high"] or 0 for c in pts] + xs) * 1.05
    y0, y1 = 0.0, float(max(ys) * 1.1 or 1.0)

    def sx(v: float) -> float:
        return pad + (v - x0) / ((x1 - x0) or 1) * (w - 2 * pad)

    def sy(v: float) -> float:
        return h - pad - (v - y0) / ((y1 - y0) or 1) * (h - 2 * pad)

    e = html.escape
    svg = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" '
        'aria-label="cost against quality loss">'
    ]
    svg.append(f'<line x1="{pad}" y1="{h - pad}" x2="{w - pad}" y2="{h - pad}" stroke="#333"/>')
    svg.append(f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{h - pad}" stroke="#333"/>')
    svg.append(f'<text x="{w / 2}" y="{h - 12}" text-anchor="middle">cost / baseline ({e(report["objective"])})</text>')
    svg.append(
        f'<text x="14" y="{h / 2}" transform="rotate(-90 14 {h / 2})" text-anchor="middle">'
        "quality loss (1 − top-1 agreement)</text>"
    )
    margins = {c["margin"] for c in pts if c["margin"] is not None}
    for m in margins:
        svg.append(
            f'<line x1="{pad}" y1="{sy(m):.1f}" x2="{w - pad}" y2="{sy(m):.1f}" stroke="#c00" stroke-dasharray="4"/>'
        )
        svg.append(f'<text x="{w - pad}" y="{sy(m) - 4:.1f}" text-anchor="end" fill="#c00">margin</text>')
    for c in pts:
        cr = c["cost_ratio"]
        x, y = sx(cr["estimate"]), sy(c["quality_loss"])
        if cr["low"] is not None and cr["high"] is not None:
            svg.append(
                f'<line x1="{sx(cr["low"]):.1f}" y1="{y:.1f}" x2="{sx(cr["high"]):.1f}" y2="{y:.1f}" stroke="#888"/>'
            )
        color = "#1a7f37" if c["quality"] == "PASS" else "#cf222e"
        r = 8 if c["name"] == rec else (6 if c["name"] in front else 4)
        title = e(f"{c['name']}: {', '.join(f'{k}={v}' for k, v in c['values'].items())}; {c['quality']}, {c['fate']}")
        dot = f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r}" fill="{color}"><title>{title}</title></circle>'
        svg.append(f'<a href="{e(c["report"])}">{dot}</a>' if c["report"] else dot)
    svg.append("</svg>")
    rows = "".join(_html_row(c, rec, front) for c in s["candidates"])
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>gates search: {e(report['pipeline'])}</title></head>"
        f"<body><h1>gates search: {e(report['pipeline'])} — {e(report['verdict'])}</h1><p>{e(report['reason'])}</p>"
        f"{''.join(svg)}<p>Green: non-inferior (PASS); red: not. Larger: on the front; largest: recommended. "
        f"Each point links to its own gate report.</p>"
        f"<table border='1' cellpadding='4'><tr><th>candidate</th><th>values</th><th>cost ratio</th><th>quality</th>"
        f"<th>gates</th><th>stopped</th><th></th></tr>{rows}</table></body></html>"
    )


def _html_row(c: dict[str, Any], rec: str | None, front: set[str]) -> str:
    e = html.escape
    name = f'<a href="{e(c["report"])}">{e(c["name"])}</a>' if c["report"] else e(c["name"])
    values = e(", ".join(f"{k}={v}" for k, v in c["values"].items()))
    est = c["cost_ratio"]["estimate"]
    cost = "" if est is None else f"{est:.3f}"
    mark = "recommended" if c["name"] == rec else ("front" if c["name"] in front else "")
    cells = (name, values, cost, e(c["quality"]), e(c["verdict"] or "—"), e(c["fate"]), mark)
    return "<tr>" + "".join(f"<td>{x}</td>" for x in cells) + "</tr>"


def write_report(result: SearchResult) -> SearchReport:
    report = report_dict(result)
    folder = result.directory
    js, md, page = folder / "report.json", folder / "report.md", folder / "report.html"
    js.write_text(json.dumps(report, indent=2, allow_nan=False, default=str))
    md.write_text(render_markdown(report))
    page.write_text(render_html(report))
    return SearchReport(js, md, page)


def comment_name(pipeline: str) -> str:
    """The search's own sticky comment and commit status (``gates/<name>-search``): the gate's stay apart."""
    return f"{pipeline}-search"


def publish_search(result: SearchResult, report: SearchReport, env: Mapping[str, str]) -> str | None:
    """The PR comment (and commit status), as the gate's: only when a GitHub target is configured."""
    target = GitHubTarget.from_env(env)
    if target is None:
        return None
    data = json.loads(report.json.read_text())
    return publish_report(
        target, comment_name(result.pipeline.config.name), report.markdown.read_text(), data["verdict"], data["reason"]
    )
