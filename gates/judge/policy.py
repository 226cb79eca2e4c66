"""Gates from the pipeline's ``gates:`` thresholds, and the verdict.

Rules, in order of precedence:
1. any gate FAIL -> FAIL (the candidate is rejected: we know enough to say no);
2. else any gate INCONCLUSIVE or NO_DATA -> INCONCLUSIVE (never PASS on missing data);
3. else, when at least one gate was applied and all applied gates PASS -> PASS.
A gate marked NOT_APPLIED (e.g. latency of a simulated candidate) never makes a PASS by itself
and its reason says why it was not applied.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from gates.config.schema import GatesSection
from gates.judge.stats import percentile_ratio_ci

PASS, FAIL, INCONCLUSIVE = "PASS", "FAIL", "INCONCLUSIVE"


class Status:
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"
    NO_DATA = "no_data"
    NOT_APPLIED = "not_applied"


@dataclasses.dataclass(frozen=True)
class GateResult:
    name: str
    status: str
    observed: float | None
    threshold: str
    reason: str
    interval: tuple[float, float] | None = None
    p_value: float | None = None

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["observed"] = _finite(self.observed)
        d["interval"] = list(self.interval) if self.interval else None
        return d


@dataclasses.dataclass(frozen=True)
class Verdict:
    verdict: str
    reason: str
    gates: tuple[GateResult, ...]


@dataclasses.dataclass(frozen=True)
class Evidence:
    """What the judge looks at; any field may be missing (None) and then fails closed."""

    baseline_latency_ms: tuple[float, ...] | None
    candidate_latency_ms: tuple[float, ...] | None
    baseline_error_rate: float | None
    candidate_error_rate: float | None
    candidate_requests: int
    exact_match_rate: float | None
    top1_agreement: float | None
    mean_kl: float | None
    golden_prompts: int
    latency_simulated: bool
    simulated_reason: str = ""


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def _missing(x: float | None) -> bool:
    return x is None or not math.isfinite(x)


def latency_gate(ev: Evidence, limit: float | None, min_requests: int) -> GateResult:
    name = "latency_p95_ratio"
    if limit is None:
        return GateResult(name, Status.NOT_APPLIED, None, "—", "no threshold configured (gates.latency_p95_ratio_max)")
    thr = f"≤ {limit:.2f}"
    b, c = ev.baseline_latency_ms or (), ev.candidate_latency_ms or ()
    if len(b) < min_requests or len(c) < min_requests:
        return GateResult(
            name,
            Status.NO_DATA,
            None,
            thr,
            f"too few successful requests to judge (baseline {len(b)}, candidate {len(c)}; need {min_requests})",
        )
    observed, lo, hi = percentile_ratio_ci(b, c, 95.0)
    if _missing(observed):
        return GateResult(name, Status.NO_DATA, None, thr, "latency samples are not finite")
    interval = (lo, hi)
    if ev.latency_simulated:
        return GateResult(
            name,
            Status.NOT_APPLIED,
            observed,
            thr,
            f"not applied: {ev.simulated_reason or 'candidate latency is simulated'}; "
            f"measured ratio {observed:.2f} (95% CI {lo:.2f}–{hi:.2f}) is not the shipped engine's",
            interval,
        )
    if hi <= limit:
        return GateResult(
            name,
            Status.PASS,
            observed,
            thr,
            f"p95 ratio {observed:.2f}, 95% CI {lo:.2f}–{hi:.2f} within limit",
            interval,
        )
    if lo > limit:
        return GateResult(
            name,
            Status.FAIL,
            observed,
            thr,
            f"p95 ratio {observed:.2f}, 95% CI {lo:.2f}–{hi:.2f} entirely above {limit:.2f}",
            interval,
        )
    return GateResult(
        name,
        Status.INCONCLUSIVE,
        observed,
        thr,
        f"p95 ratio {observed:.2f} but 95% CI {lo:.2f}–{hi:.2f} straddles {limit:.2f}: run longer",
        interval,
    )


def error_rate_gate(ev: Evidence, limit: float) -> GateResult:
    name = "error_rate"
    thr = f"≤ {limit:.4g}"
    if _missing(ev.candidate_error_rate) or ev.candidate_requests == 0:
        return GateResult(name, Status.NO_DATA, None, thr, "no candidate requests were measured")
    c = float(ev.candidate_error_rate)  # type: ignore[arg-type]
    if c > limit:
        return GateResult(name, Status.FAIL, c, thr, f"candidate error rate {c:.2%} above {limit:.2%}")
    if _missing(ev.baseline_error_rate) or float(ev.baseline_error_rate) > limit:  # type: ignore[arg-type]
        return GateResult(
            name,
            Status.INCONCLUSIVE,
            c,
            thr,
            "baseline itself failed requests above the limit: the measurement is not trustworthy",
        )
    return GateResult(name, Status.PASS, c, thr, f"candidate error rate {c:.2%} of {ev.candidate_requests} requests")


def _min_gate(name: str, observed: float | None, limit: float | None, prompts: int, what: str) -> GateResult:
    if limit is None:
        return GateResult(name, Status.NOT_APPLIED, _finite(observed), "—", "no threshold configured")
    thr = f"≥ {limit:.3g}"
    if prompts == 0 or _missing(observed):
        return GateResult(name, Status.NO_DATA, None, thr, f"no {what} measured")
    o = float(observed)  # type: ignore[arg-type]
    status = Status.PASS if o >= limit else Status.FAIL
    return GateResult(
        name,
        status,
        o,
        thr,
        f"{what} {o:.3f} over {prompts} golden prompts ({'meets' if status == Status.PASS else 'below'} {limit:.3g})",
    )


def _max_gate(name: str, observed: float | None, limit: float | None, prompts: int, what: str) -> GateResult:
    if limit is None:
        return GateResult(name, Status.NOT_APPLIED, _finite(observed), "—", "no threshold configured")
    thr = f"≤ {limit:.3g}"
    if prompts == 0 or _missing(observed):
        return GateResult(name, Status.NO_DATA, None, thr, f"no {what} measured")
    o = float(observed)  # type: ignore[arg-type]
    status = Status.PASS if o <= limit else Status.FAIL
    return GateResult(
        name,
        status,
        o,
        thr,
        f"{what} {o:.4g} over {prompts} golden prompts ({'within' if status == Status.PASS else 'above'} {limit:.3g})",
    )


def judge(ev: Evidence, cfg: GatesSection) -> Verdict:
    gates = (
        latency_gate(ev, cfg.latency_p95_ratio_max, cfg.min_requests),
        error_rate_gate(ev, cfg.error_rate_max),
        _min_gate(
            "exact_match_rate",
            ev.exact_match_rate,
            cfg.exact_match_rate_min,
            ev.golden_prompts,
            "greedy exact-match rate",
        ),
        _min_gate(
            "top1_agreement", ev.top1_agreement, cfg.top1_agreement_min, ev.golden_prompts, "next-token top-1 agreement"
        ),
        _max_gate("mean_kl", ev.mean_kl, cfg.mean_kl_max, ev.golden_prompts, "mean KL divergence"),
    )
    return decide(gates)


def decide(gates: tuple[GateResult, ...]) -> Verdict:
    failed = [g for g in gates if g.status == Status.FAIL]
    unsure = [g for g in gates if g.status in (Status.INCONCLUSIVE, Status.NO_DATA)]
    applied = [g for g in gates if g.status != Status.NOT_APPLIED]
    skipped = [g for g in gates if g.status == Status.NOT_APPLIED and g.observed is not None]
    if failed:
        return Verdict(FAIL, "failed: " + "; ".join(f"{g.name} ({g.reason})" for g in failed), gates)
    if unsure:
        return Verdict(INCONCLUSIVE, "inconclusive: " + "; ".join(f"{g.name} ({g.reason})" for g in unsure), gates)
    if not applied:
        return Verdict(INCONCLUSIVE, "inconclusive: no gate could be applied", gates)
    reason = f"all {len(applied)} applied gates passed"
    if skipped:
        reason += "; not judged: " + ", ".join(g.name for g in skipped) + " (see reasons)"
    return Verdict(PASS, reason, gates)
