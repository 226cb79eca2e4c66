"""The promotion comment a reviewer reads (golden file): outcome first, escaped ledger below."""

from __future__ import annotations

from collections.abc import Callable

from gates.promotion.comments import promotion_comment
from gates.promotion.machine import Outcome

T0 = 1_795_000_000.0


def row(i: int, actor: str, action: str, to: str | None, detail: str | None) -> dict[str, object]:
    return {"at": T0 + i, "actor": actor, "action": action, "to": to, "detail": detail}


def test_rolled_back_comment(golden: Callable[[str, str], None]) -> None:
    history = [
        row(0, "ci", "gate_run", "PASS", '{"pr": 4, "sha": "aaaa"}'),
        row(1, "mallory", "promote_denied", None, '"mallory is not in promotion.approvers (@org/release-managers)"'),
        row(2, "rita", "promotion_started", "canary@-1", '{"steps": [10, 25, 50, 100]}'),
        row(3, "rita", "step_passed", "canary@0", '"2/20 requests to the canary, 0 errors"'),
        row(4, "rita", "check_failed", "rolling_back@0", '"canary errors: server: <img src=x onerror=alert(1)>"'),
        row(5, "rita", "rolled_back", "rolled_back@0", '"step 2 at 25%: canary errors"'),
    ]
    out = Outcome("rolled_back", 0, "demo: rolled back: step 2 at 25%: canary errors <b>@everyone</b>")
    text = promotion_comment("demo", out, history)
    assert "<img" not in text and "<b>" not in text and "@org" not in text and "@everyone" not in text
    golden("promotion_rolled_back.md", text)
