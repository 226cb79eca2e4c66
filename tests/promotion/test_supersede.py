"""A new commit on the PR voids the in-progress promotion of the old one (through a real router)."""

from __future__ import annotations

import time
from pathlib import Path

from gates.config.schema import PromotionSection
from gates.ledger import CanaryState, Ledger, PromotionRecord
from gates.promotion.supersede import supersede
from gates.promotion.targets.weighted_router import WeightedRouter


def test_pr_moving_on_rolls_the_old_canary_back(tmp_path: Path) -> None:
    ledger = Ledger(str(tmp_path / "l.db"))
    with WeightedRouter("127.0.0.1:9", "model", "s", "c", 50) as router:  # no upstream needed to move weights
        ledger.set_canary(CanaryState("p", "local", router.url, "s", "c", 50, time.time(), "d" * 64), "ops", "x")
        paused = PromotionRecord("p", "d" * 64, 7, "a" * 40, "paused", 2, 0, "rita", time.time())
        ledger.set_promotion(paused, "rita", "paused_for_approval")
        cfg = PromotionSection()
        assert supersede(ledger, "p", cfg, 7, "a" * 40, lambda _: None) is None  # same commit: nothing
        assert supersede(ledger, "p", cfg, 8, "b" * 40, lambda _: None) is None  # another PR: nothing
        out = supersede(ledger, "p", cfg, 7, "b" * 40, lambda _: None)
        assert out is not None and out.state == "rolled_back" and router.weight == 0
        last = ledger.history("p")[-1]
        assert (
            last["action"] == "rolled_back" and last["actor"] == "gates" and "moved from aaaaaaaaaaaa" in last["detail"]
        )
        assert supersede(ledger, "p", cfg, 7, "c" * 40, lambda _: None) is None  # already rolled back
