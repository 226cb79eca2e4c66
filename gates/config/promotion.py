"""The ``promotion:`` section: canary steps, who may promote, and the live re-check at each step."""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from gates.config.analysis import AnalysisSection
from gates.config.strict import Strict


class RecheckSection(Strict):
    """The check run at every canary step, on live traffic through the canary target."""

    requests: int = Field(default=20, ge=1)  # sent through the router at the step's weight
    max_new_tokens: int = Field(default=8, ge=1)
    min_canary_requests: int = Field(default=1, ge=1)  # fewer reached the canary: no data, the check fails
    max_error_rate: float = Field(default=0.0, ge=0, le=1)  # of the canary's requests
    drift_prompts: int = Field(default=4, ge=0)  # golden prompts compared canary vs stable (top-1)
    top1_agreement_min: float = Field(default=0.9, ge=0, le=1)


class PromotionSection(Strict):
    steps: list[int] = Field(default_factory=lambda: [10, 25, 50, 100])
    # who may promote or roll back: GitHub logins ("alice") and teams ("@org/team")
    approvers: list[str] = Field(default_factory=list)
    codeowners: bool = False  # the CODEOWNERS of the pipeline file (default branch) may too
    failure_limit: int = Field(default=2, ge=1)  # consecutive failed re-checks before automatic rollback
    retry_interval_s: float = Field(default=5.0, ge=0)  # between re-checks of one step
    manual_gate_after: int | None = None  # pause after this step's weight until approved again
    recheck: RecheckSection = Field(default_factory=RecheckSection)
    # the analysis window at every step (docs/canary.md); absent: the re-check above
    analysis: AnalysisSection | None = None
    # before the first weight, the proxy copies stable's live requests to the canary and drops its
    # answers; the analysis judges the copies with no user served by the canary (nginx target)
    mirror: bool = False

    @field_validator("steps")
    @classmethod
    def _steps(cls, v: list[int]) -> list[int]:
        if not v or any(not 0 < s <= 100 for s in v) or v != sorted(set(v)):
            raise ValueError("promotion.steps must be strictly increasing percentages in 1..100")
        if v[-1] != 100:
            raise ValueError("promotion.steps must end at 100 (the canary becomes stable there)")
        return v

    @field_validator("approvers")
    @classmethod
    def _approvers(cls, v: list[str]) -> list[str]:
        for a in v:
            if not re.match(r"^(@[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+|[A-Za-z0-9][A-Za-z0-9-]*)$", a):
                raise ValueError(f"promotion.approvers entry {a!r} is neither a login nor @org/team")
        return v

    @model_validator(mode="after")
    def _gate(self) -> PromotionSection:
        if self.mirror and self.analysis is None:
            # the re-check counts the answers users got from the canary: copies have none to count
            raise ValueError("promotion.mirror needs promotion.analysis (the copies are judged by canary analysis)")
        if self.manual_gate_after is not None and self.manual_gate_after not in self.steps[:-1]:
            raise ValueError("promotion.manual_gate_after must be one of promotion.steps before the last")
        return self
