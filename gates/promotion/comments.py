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
    return "\n".join(lines)


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
