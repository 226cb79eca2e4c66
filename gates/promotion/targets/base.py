"""What a canary target is: somewhere a canary's traffic weight is set, read back and checked live.

One module per provider (``haproxy.py``: HAProxy before Triton; ``nginx.py``: nginx, which can also
mirror; ``local.py``: gates' own weighted
router; ``kserve.py``: a KServe InferenceService), one entry each in
:data:`gates.promotion.targets.TARGETS` — as Flagger keeps a router interface, one file per
provider and a factory.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from gates.config.analysis import AnalysisSection
from gates.config.promotion import RecheckSection
from gates.config.schema import GatesSection
from gates.errors import BadInputError
from gates.promotion.machine import Checker


def cannot_mirror(kind: str) -> BadInputError:
    return BadInputError(
        f"promotion.mirror: the {kind} canary target cannot copy traffic to the canary; serve the canary "
        "through nginx (gates canary serve --proxy nginx) or set promotion.mirror: false"
    )


class Target(Protocol):
    kind: str  # what the ledger records as CanaryState.target

    def set_weight(self, weight: int) -> None:
        """Send ``weight`` percent of the traffic to the canary (raises when the target refuses)."""

    def read_weight(self) -> int:
        """The weight the target really applies now (not what the ledger says it should)."""

    def set_mirror(self, on: bool) -> None:
        """Copy stable's live requests to the canary and drop its answers (``promotion.mirror``), or
        stop; raises BadInputError where the target cannot copy traffic."""

    def checker(self, prompts: Sequence[str], cfg: RecheckSection) -> Checker:
        """The live re-check of this canary: traffic through the target, then drift."""

    def analysis_checker(self, prompts: Sequence[str], gates: GatesSection, cfg: AnalysisSection) -> Checker:
        """Canary analysis (``promotion.analysis``): one window of both arms per check, judged
        (gates/promotion/analysis/); raises BadInputError when this target cannot provide it."""
