"""A new commit on a PR voids the promotion of its previous commit (the analysis restarts).

A canary promoted from PR #N at commit A keeps its traffic only while A is what the PR proposes.
When the PR moves on to B, the promotion of A is rolled back (decision recorded first, so a
failure to reach the target is finished by the next promote or re-check), and B is promoted only
after its own gate passes.
"""

from __future__ import annotations

from collections.abc import Callable

from gates.config.promotion import PromotionSection
from gates.errors import GatesError
from gates.ledger import Ledger
from gates.ledger.states import PromotionState
from gates.promotion import canary as ops
from gates.promotion.machine import NoCheck, Outcome, PromotionRun

ACTOR = "gates"


def supersede(
    ledger: Ledger,
    pipeline: str,
    cfg: PromotionSection,
    pr: int | None,
    sha: str | None,
    progress: Callable[[str], None] = print,
) -> Outcome | None:
    rec = ledger.promotion(pipeline)
    if pr is None or sha is None or rec is None or rec.pr != pr or rec.sha == sha:
        return None
    if rec.state not in (PromotionState.CANARY, PromotionState.PAUSED, PromotionState.ROLLING_BACK):
        return None

    def move(weight: int, label: str) -> None:
        ops.set_weight(ledger, pipeline, weight, ACTOR, label)

    run = PromotionRun(ledger, pipeline, cfg, NoCheck(), move, ACTOR, progress=progress)
    reason = (
        f"PR #{pr} moved from {(rec.sha or '?')[:12]} to {sha[:12]}: that promotion is void; "
        "promote again once the gate passes on the new commit"
    )
    try:
        return run.rollback(reason)
    except GatesError as exc:  # recorded as rolling_back: the next promote or re-check finishes it
        progress(f"{pipeline}: could not roll back the superseded canary yet: {exc}")
        return None
