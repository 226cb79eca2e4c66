"""``search:``: the configurations ``gates search`` tries (gates/search/), what it minimizes and its budget.

Each axis is a dotted key of this pipeline config with the values to try; every combination is a
candidate (the pipeline with those values), validated by the same schema as a hand-written one
(gates/search/space.py) before anything is built. ``gates run`` ignores this section.
"""

from __future__ import annotations

import itertools
from enum import StrEnum
from typing import Any

from pydantic import Field, field_validator

from gates.config.strict import Strict


class Objective(StrEnum):
    """What the search minimizes among the candidates that pass every gate."""

    COST_AT_SLO = "cost_at_slo"  # cost per 1M output tokens at the load (at the SLO with load.sweep)
    P95_LATENCY = "p95_latency"  # the candidate's p95 end-to-end latency
    MODEL_SIZE = "model_size"  # bytes of what the engine serves (its build), measured exactly


class Spending(StrEnum):
    """How each candidate's error is spent over the rungs (gates/judge/sequential.py)."""

    OBRIEN_FLEMING = "obrien_fleming"
    POCOCK = "pocock"


class SearchSection(Strict):
    # dotted config key -> the values to try, e.g. {engine.precision: [int8, int4]}; the order of
    # the axes and their values is the order of the candidates
    axes: dict[str, list[Any]] = Field(default_factory=dict, max_length=16)
    # combinations left out: each entry some axes' values (e.g. {engine.backend: openvino,
    # engine.accuracy_level: 1}); a combination with all of one entry's values is not a candidate
    exclude: list[dict[str, Any]] = Field(default_factory=list, max_length=64)
    objective: Objective = Field(default=Objective.COST_AT_SLO, strict=False)  # YAML gives the name
    max_candidates: int = Field(default=16, ge=1, le=256)  # more combinations than this: refused (exit 2)
    max_minutes: float | None = Field(default=None, gt=0, le=7 * 24 * 60)  # wall clock; past it no rung starts
    # the chance that the search recommends a candidate whose true quality loss is beyond the
    # margin (split evenly over the candidates: Bonferroni), and that a cost comparison that
    # stopped a candidate was wrong (split over the pairs)
    false_recommend: float = Field(default=0.05, gt=0, lt=0.5)
    cost_error: float = Field(default=0.05, gt=0, lt=0.5)
    # the measurement of each rung as a share of the pipeline's full load (the last is 1.0): a
    # candidate settled at a rung is not measured further
    rungs: list[float] = Field(default_factory=lambda: [0.125, 0.25, 0.5, 1.0], min_length=1, max_length=8)
    spending: Spending = Field(default=Spending.POCOCK, strict=False)
    # a candidate whose quality loss is certainly beyond this share of the margin stops (it could
    # not be shown within the margin); one with a loss within it is stopped so with chance <= miss_error
    futility: float = Field(default=0.5, gt=0, le=1)
    miss_error: float = Field(default=0.05, gt=0, lt=0.5)

    @field_validator("rungs")
    @classmethod
    def _rungs(cls, v: list[float]) -> list[float]:
        if any(b <= a for a, b in itertools.pairwise(v)) or v[0] <= 0 or v[-1] != 1.0:
            raise ValueError("search.rungs must increase, start above 0 and end at 1.0 (the full load)")
        return v
