"""What gates says on a PR about promotions: the sticky promotion comment, escaped text."""

from __future__ import annotations

import json
import time
from typing import Any

from gates.promotion.machine import Outcome
from gates.report.escape import md_inline

PROMOTION_MARKER = "<!-- gates:promotion pipeline={name} -->"
STATE_TITLE = {
    "stable": "promoted to stable",
    "paused": "paused for approval",
    "rolled_back": "rolled back",
    "canary": "in progress",
    "rolling_back": "rolling back",
}


def promotion_comment(name: str, outcome: Outcome, history: list[dict[str, Any]]) -> str:
    """The sticky promotion comment: the outcome first, then the ledger's recent transitions."""
    title = STATE_TITLE.get(outcome.state, outcome.state)
    message = outcome.message.removeprefix(f"{name}: ")
    lines = [
        PROMOTION_MARKER.format(name=name),
        f"### gates promotion: `{name}` — {title} (canary at {outcome.weight}%)",
        "",
        md_inline(message, 600),
        "",
        "<details><summary>Ledger (latest 15 transitions)</summary>",
        "",
        "| when (UTC) | who | action | state | detail |",
        "|---|---|---|---|---|",
    ]
    for h in history[-15:]:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(h["at"]))
        detail = detail_text(h["detail"])
        lines.append(
            f"| {when} | {md_inline(h['actor'], 60)} | {h['action']} | {md_inline(h['to'] or '', 40)} "
            f"| {md_inline(detail, 200)} |"
        )
    lines += ["", "</details>", ""]
    windows = [h for h in history if h["action"] == "analysis_window"][-12:]
    if windows:
        lines += [
            "<details><summary>Canary analysis: canary against stable, latest windows</summary>",
            "",
            "| weight | window | requests c / s | latency p50 / p95 / p99 ms, c vs s | TTFT p50 ms | shift (interval) "
            "| decision |",
            "|---|---|---|---|---|---|---|",
        ]
        for h in windows:
            lines.append("| " + " | ".join(md_inline(c, 200) for c in window_cells(h)) + " |")
        lines += ["", "</details>", ""]
    return "\n".join(lines)


def _figures(raw: str | None) -> dict[str, Any]:
    try:
        value = json.loads(raw or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _pcts(arm: dict[str, Any], metric: str, keys: tuple[str, ...]) -> str:
    q = arm.get(metric)
    return " / ".join(f"{q[k]:.0f}" for k in keys) if isinstance(q, dict) else "—"


def window_cells(h: dict[str, Any]) -> list[str]:
    """One analysis window (a ledger row) as table cells: canary against stable, the decision, why."""
    f = _figures(h["detail"])
    step = f.get("step", {})
    c, s = step.get("canary", {}), step.get("stable", {})
    shift = "—"
    for g in f.get("gates", []):
        if g.get("name") == "latency_ms shift" and g.get("observed") is not None:
            lo, hi = (g.get("interval") or [None, None])[:2]
            inside = f" ({lo:+.1%} to {hi:+.1%})" if lo is not None and hi is not None else ""
            shift = f"{g['observed']:+.1%}{inside}"
    keys = ("p50", "p95", "p99")
    decision = f"{f.get('decision', h.get('verdict') or '')}: {f.get('reason', '')}"
    where = f"{f.get('window', '?')}/{f.get('max_windows', '?')} ({f.get('traffic', 'live')})"
    return [
        f"{h.get('weight')}%",
        where,
        f"{c.get('requests', 0)} / {s.get('requests', 0)}, errors {c.get('errors', 0)} / {s.get('errors', 0)}",
        f"{_pcts(c, 'latency_ms', keys)} vs {_pcts(s, 'latency_ms', keys)}",
        f"{_pcts(c, 'ttft_ms', ('p50',))} vs {_pcts(s, 'ttft_ms', ('p50',))}",
        shift,
        decision,
    ]


def detail_text(raw: str | None) -> str:
    if not raw:
        return ""
    try:
        value = json.loads(raw)
    except ValueError:
        return raw
    return value if isinstance(value, str) else json.dumps(value, separators=(", ", ": "))


def quiet(text: str) -> str:
    """Escaped, so naming a team in a refusal does not notify it."""
    return md_inline(text)
