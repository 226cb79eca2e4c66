"""Canary weights on the recorded target (local router or KServe), each change recorded in the ledger.

Promotion and rollback are the state machine's (``gates.promotion.machine``); they move weights here."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from gates.config.analysis import TrafficMode
from gates.config.parse import PipelineFile
from gates.errors import BadInputError
from gates.ledger import CanaryState, Ledger
from gates.promotion.machine import Checker
from gates.promotion.targets import target_for
from gates.quality.golden import load_golden_suite


def set_weight(
    ledger: Ledger, pipeline: str, weight: int, actor: str, action: str = "canary_set", workdir: Path | None = None
) -> CanaryState:
    """Move the canary to ``weight`` on its recorded target, then record it (target first: a
    failure leaves the ledger describing what is really deployed)."""
    if not 0 <= weight <= 100:
        raise BadInputError(f"canary weight must be between 0 and 100, got {weight}")
    state = ledger.canary(pipeline)
    if state is None:
        raise BadInputError(f"pipeline {pipeline!r} has no canary deployment recorded; deploy one first")
    target_for(state, workdir).set_weight(weight)
    new = dataclasses.replace(state, weight=weight, updated_at=time.time())
    ledger.set_canary(new, actor, action)
    return new


def set_mirror(ledger: Ledger, pipeline: str, on: bool, actor: str, workdir: Path | None = None) -> None:
    """Turn the canary target's mirror on or off (target first, then the ledger)."""
    state = ledger.canary(pipeline)
    if state is None:
        raise BadInputError(f"pipeline {pipeline!r} has no canary deployment recorded; deploy one first")
    target_for(state, workdir).set_mirror(on)
    ledger.record(pipeline, actor, "canary_mirror_on" if on else "canary_mirror_off", None, None, weight=0)


def live_checker(pf: PipelineFile, canary: CanaryState, traffic: TrafficMode | None = None) -> Checker:
    """The live check of ``canary`` through its target, with the pipeline's golden prompts: canary
    analysis when ``promotion.analysis`` is configured (``traffic`` overrides its traffic mode),
    else the re-check."""
    prompts: list[str] = []
    for suite in pf.config.golden.suites:
        prompts += [g.row.display for g in load_golden_suite(pf.resolve(suite), suite)]
    promotion = pf.config.promotion
    if promotion.analysis is not None:
        analysis = promotion.analysis if traffic is None else promotion.analysis.model_copy(update={"traffic": traffic})
        return target_for(canary).analysis_checker(prompts, pf.config.gates, analysis)
    return target_for(canary).checker(prompts, promotion.recheck)
