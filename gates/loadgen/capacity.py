"""Capacity at the SLO: the highest swept rate (or concurrency) at which an arm still meets it.

Each sweep step is judged per arm against the SLO: the p95 of every limited per-request metric
(latency, TTFT, ITL) must be within its limit and the error rate within ``error_rate_max``. The p95
of a step is uncertain, so each step gets an exact order-statistic interval of its p95 (at the
judge's confidence; unbounded above below 104 requests at 0.99, see
:func:`gates.judge.tail.quantile_interval`) and one of three outcomes:

- *certain pass*: the upper bound of every p95 is within its limit (and errors are within theirs);
- *certain fail*: a lower bound is above its limit, the error rate is above its limit, or no request
  succeeded;
- *uncertain*: the point estimates decide pass or fail, the interval straddles the limit.

The capacity is the last step of the first run of passing steps (point estimates), and its
interval is a bracket on the grid: ``low`` is the last step of the first run of *certainly* passing
steps, ``high`` the first *certainly* failing step (the true capacity is below it); ``high`` is None
when no step certainly failed (the capacity may lie beyond the sweep). A bracket is used rather
than a fitted latency curve because the latency-load curve of a server has a knee whose shape
differs between engines: no model is assumed, the steps say what was measured, and a coarse sweep
honestly shows up as a wide bracket.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from gates.judge.cost import cost_per_mtok
from gates.judge.tail import quantile_interval
from gates.loadgen.stats import ArmLoad

SLO_PERCENTILE = 95.0
PASS, FAIL, UNCERTAIN_PASS, UNCERTAIN_FAIL, UNUSABLE = "pass", "fail", "pass?", "fail?", "unusable"


@dataclasses.dataclass(frozen=True)
class SweepStep:
    value: float  # the swept setting: requests/s per arm (open loop) or users (closed loop)
    baseline: ArmLoad
    candidate: ArmLoad
    generator_problem: str | None  # a saturated client: the step says nothing about the server
    # each arm's own rate where the capacity search gave the arms different rates; None: ``value``
    arm_values: dict[str, float] | None = None

    def arm(self, name: str) -> ArmLoad:
        return self.baseline if name == "baseline" else self.candidate

    def value_of(self, arm: str) -> float:
        return self.arm_values[arm] if self.arm_values is not None else self.value


@dataclasses.dataclass(frozen=True)
class StepCheck:
    status: str  # PASS / FAIL (certain), UNCERTAIN_PASS / UNCERTAIN_FAIL (point estimate), UNUSABLE
    p95: dict[str, tuple[float, float, float]]  # metric -> (estimate, low, high)
    reason: str

    @property
    def passes(self) -> bool:
        return self.status in (PASS, UNCERTAIN_PASS)


@dataclasses.dataclass(frozen=True)
class ArmCapacity:
    max_rate: float | None  # None: no step met the SLO
    low: float | None
    high: float | None
    usd_per_1m_tokens: float | None  # at max_rate, from that step's output tokens/s
    throughput_rps: float | None  # achieved at max_rate
    output_tokens_per_s: float | None


def _samples(arm: ArmLoad, metric: str) -> Sequence[float]:
    return {"latency_ms": arm.samples_ms, "ttft_ms": arm.ttft_samples_ms, "itl_ms": arm.itl_samples_ms}[metric]


def p95_interval(samples: Sequence[float], confidence: float, seed: int = 0) -> tuple[float, float, float]:
    """(p95, low, high): the exact order-statistic interval of the p95, two-sided at ``confidence``.

    ``seed`` is unused (kept for callers): the interval is deterministic. A percentile bootstrap
    covered 82% at 30-60 requests for a nominal 95%."""
    del seed
    x = np.asarray([v for v in samples if math.isfinite(v)], dtype=float)
    if not x.size:
        return math.nan, math.nan, math.nan
    low, high = quantile_interval(x, SLO_PERCENTILE / 100, confidence)
    est = float(np.percentile(x, SLO_PERCENTILE))
    return est, min(low, est), max(high, est)


def check_step(
    arm: ArmLoad, slo: dict[str, float], error_rate_max: float, confidence: float, problem: str | None = None
) -> StepCheck:
    """One arm at one step against the SLO (see the module docstring)."""
    if problem:
        return StepCheck(UNUSABLE, {}, problem)
    p95 = {m: p95_interval(_samples(arm, m), confidence) for m in slo}
    if arm.requests == 0 or arm.requests == arm.errors:
        return StepCheck(FAIL, p95, "no request succeeded")
    if arm.error_rate > error_rate_max:
        return StepCheck(FAIL, p95, f"error rate {arm.error_rate:.1%} above {error_rate_max:.1%}")
    if any(math.isnan(est) for est, _, _ in p95.values()):
        return StepCheck(FAIL, p95, "a limited metric was not measured")
    over = [m for m, (_, lo, _) in p95.items() if lo > slo[m]]
    if over:
        return StepCheck(
            FAIL, p95, "p95 certainly above the limit (exact order-statistic interval): " + ", ".join(over)
        )
    if all(hi <= slo[m] for m, (_, _, hi) in p95.items()):
        return StepCheck(PASS, p95, "p95 certainly within every limit (exact order-statistic interval)")
    point_ok = all(est <= slo[m] for m, (est, _, _) in p95.items())
    return StepCheck(
        UNCERTAIN_PASS if point_ok else UNCERTAIN_FAIL, p95, "p95 interval (exact order statistics) straddles a limit"
    )


def arm_capacity(
    steps: Sequence[SweepStep], checks: Sequence[StepCheck], arm: str, usd_per_hour: float | None
) -> ArmCapacity:
    """The capacity of one arm from its per-step checks, in sweep order (see the module docstring)."""
    max_i = low_i = None
    for i, c in enumerate(checks):
        if not c.passes:
            break
        max_i = i
    for i, c in enumerate(checks):
        if c.status != PASS:
            break
        low_i = i
    high = next((s.value_of(arm) for s, c in zip(steps, checks, strict=True) if c.status == FAIL), None)
    if max_i is None:
        return ArmCapacity(None, None, high, None, None, None)
    load = steps[max_i].arm(arm)
    cost = cost_per_mtok(usd_per_hour, load.output_tokens_per_s) if usd_per_hour else None
    return ArmCapacity(
        steps[max_i].value_of(arm),
        steps[low_i].value_of(arm) if low_i is not None else None,
        high,
        cost if cost is None or math.isfinite(cost) else None,
        load.rps,
        load.output_tokens_per_s,
    )


def gain(baseline: ArmCapacity, candidate: ArmCapacity) -> tuple[float | None, float | None, float | None]:
    """(candidate/baseline capacity, low, high): the bracket ratio, None where a bound is unknown."""
    if not baseline.max_rate or candidate.max_rate is None:
        return None, None, None
    est = candidate.max_rate / baseline.max_rate
    low = candidate.low / baseline.high if candidate.low is not None and baseline.high else None
    high = candidate.high / baseline.low if candidate.high is not None and baseline.low else None
    return est, low, high


@dataclasses.dataclass(frozen=True)
class Capacity:
    over: str  # "rate" or "concurrency"
    slo: dict[str, float]
    steps: tuple[SweepStep, ...]
    checks: dict[str, tuple[StepCheck, ...]]  # per arm, one per step
    baseline: ArmCapacity
    candidate: ArmCapacity
    confidence: float  # two-sided, of every step's p95 interval
    # capacity by search (gates/loadgen/search.py): the gain's own interval, and how it was found
    gain_interval: tuple[float | None, float | None] | None = None
    search: dict[str, Any] | None = None

    def gain(self) -> tuple[float | None, float | None, float | None]:
        if self.gain_interval is not None:
            b, c = self.baseline.max_rate, self.candidate.max_rate
            return (c / b if b and c is not None else None), *self.gain_interval
        return gain(self.baseline, self.candidate)

    def to_json(self) -> dict[str, Any]:
        est, low, high = self.gain()
        return {
            "slo": {**self.slo, "percentile": SLO_PERCENTILE},
            "over": self.over,
            "confidence": self.confidence,
            "baseline": dataclasses.asdict(self.baseline),
            "candidate": dataclasses.asdict(self.candidate),
            "gain": est,
            "gain_interval": [low, high],
            "search": self.search,
            "steps": [
                {
                    "value": s.value,
                    "generator_problem": s.generator_problem,
                    **{
                        arm: {
                            "rate": s.value_of(arm),
                            "status": self.checks[arm][i].status,
                            "reason": self.checks[arm][i].reason,
                            "requests": s.arm(arm).requests,
                            "rps": s.arm(arm).rps,
                            "output_tokens_per_s": s.arm(arm).output_tokens_per_s,
                            "goodput_rps": s.arm(arm).goodput_rps,
                            "error_rate": s.arm(arm).error_rate,
                            "latency_ms": s.arm(arm).latency_ms,
                            "ttft_ms": s.arm(arm).ttft_ms,
                            "itl_ms": s.arm(arm).itl_ms,
                            "p95_interval": {m: list(v) for m, v in self.checks[arm][i].p95.items()},
                        }
                        for arm in ("baseline", "candidate")
                    },
                }
                for i, s in enumerate(self.steps)
            ],
        }


def capacity(
    over: str,
    steps: Sequence[SweepStep],
    slo: dict[str, float],
    error_rate_max: float,
    confidence: float,
    usd_per_hour: float | None,
) -> Capacity:
    checks = {
        arm: tuple(check_step(s.arm(arm), slo, error_rate_max, confidence, s.generator_problem) for s in steps)
        for arm in ("baseline", "candidate")
    }
    return Capacity(
        over,
        dict(slo),
        tuple(steps),
        checks,
        arm_capacity(steps, checks["baseline"], "baseline", usd_per_hour),
        arm_capacity(steps, checks["candidate"], "candidate", usd_per_hour),
        confidence,
    )
