"""Where a promotion stands: the states the ledger records and the state machine moves between."""

from __future__ import annotations

from enum import StrEnum


class PromotionState(StrEnum):
    CANARY = "canary"  # walking the steps
    PAUSED = "paused"  # waiting at the manual gate for an approval
    ROLLING_BACK = "rolling_back"  # decided; the weight is on its way to 0%
    STABLE = "stable"  # promoted to 100%
    ROLLED_BACK = "rolled_back"  # at 0%, for good (this build)
