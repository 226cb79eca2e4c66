"""Gates and the verdict. Pure functions over :class:`Evidence`; no I/O.

Three kinds of gates:
- *metric* gates: per-request series (latency, tokens/s) classified Pass/High/Low/NoData by
  Mann-Whitney U + Hodges-Lehmann (see classify.py), weighted into group scores; a critical
  metric changing in its bad direction fails on its own;
- the *score* gate: Kayenta-style score over the groups against ``pass``/``marginal``;
- *absolute* gates: error rate, p95/p99 ratio (order-statistic test, tail.py), drift thresholds, cost saving.

The verdict over them (and the capacity and quality gates) is decided once, in decide.py.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

from gates.config.requests import P99_MIN_REQUESTS
from gates.config.schema import GatesSection, MetricSpec
from gates.judge.adaptive import Look, final_look, tail_boundary
from gates.judge.classify import NODATA, classify
from gates.judge.cost import cost_gate
from gates.judge.stats import finite, half_budget, metric_confidence
from gates.judge.steady import steady_window
from gates.judge.tail import judge_quantile, quantile_test

if TYPE_CHECKING:
    from gates.judge.points import PointEvidence
from gates.judge.verdict import FAIL, INCONCLUSIVE, PASS, GateResult, Status, Verdict, decide, finite_or_none

Series = tuple[tuple[float, ...], tuple[float, ...]]  # (baseline, candidate)


@dataclasses.dataclass(frozen=True)
class Evidence:
    """What the judge looks at; any field may be missing (None) and then fails closed."""

    series: Mapping[str, Series]  # per-request metric name -> samples of both arms
    baseline_error_rate: float | None
    candidate_error_rate: float | None
    candidate_requests: int
    exact_match_rate: float | None
    top1_agreement: float | None
    mean_kl: float | None
    golden_prompts: int
    latency_simulated: bool
    simulated_reason: str = ""
    baseline_tokens_per_s: float | None = None
    candidate_tokens_per_s: float | None = None
    generator_problem: str | None = None
    generator_summary: str = ""
    server_failures: tuple[float, float] | None = None  # (baseline, candidate) failed inferences, server side
    server_stall: str | None = None  # a silence of both arms with requests failing (see stall.py)
    looks: tuple[Look, ...] = ()  # an adaptive load's looks (gates/judge/adaptive.py); () = fixed duration
    kl_top_k: int = 0  # mean_kl is the lower bound over the baseline's top-k tokens + the rest (0: unknown k)
    mean_kl_full: float | None = None  # the full-vocabulary KL, when measured (golden.full_kl): judged instead
    points: PointEvidence | None = None  # the latency point, batch sizes, output lengths (gates/judge/points.py)


def _missing(x: float | None) -> bool:
    return x is None or not math.isfinite(x)


def _perf_unusable(ev: Evidence) -> str | None:
    """Why performance figures cannot be judged in this run, if they cannot."""
    if ev.latency_simulated:
        return ev.simulated_reason or "candidate performance is simulated"
    if ev.generator_problem:
        return ev.generator_problem
    if ev.server_stall:  # latencies straddling the stall are the server's, whichever arm they were
        return ev.server_stall
    return None


def _not_applied_sim(ev: Evidence) -> str:
    return f"not applied: {_perf_unusable(ev)}"


def metric_gate(ev: Evidence, spec: MetricSpec, cfg: GatesSection) -> GateResult:
    name = f"{spec.series_key} shift"
    bound = {"increase": "≤ +", "decrease": "≥ −", "either": "± "}[spec.direction]
    thr = f"{bound}{spec.allowed_effect:.0%}"
    b, c = ev.series.get(spec.series_key, ((), ()))
    cls = classify(
        b,
        c,
        direction=spec.direction,
        allowed_effect=spec.allowed_effect,
        confidence=metric_confidence(cfg.confidence, spec.direction, len(cfg.metrics)),  # Bonferroni share
        min_samples=cfg.min_requests,
        remove_outliers=spec.remove_outliers,
        looks=ev.looks,
    )
    blocking = spec.critical or (cls.label == NODATA and spec.must_have_data)
    if cls.label == NODATA and _perf_unusable(ev):  # not judged anyway: missing data blocks nothing
        return GateResult(name, Status.NOT_APPLIED, None, thr, f"{_not_applied_sim(ev)}; {cls.reason}", blocking=False)
    if cls.label == NODATA:
        status = Status.NO_DATA if spec.must_have_data else Status.NOT_APPLIED
        return GateResult(name, status, None, thr, cls.reason, blocking=blocking)
    if _perf_unusable(ev):
        return GateResult(
            name,
            Status.NOT_APPLIED,
            cls.relative,
            thr,
            f"{_not_applied_sim(ev)}; measured {cls.reason}",
            cls.interval,
            cls.p_value,
            blocking=False,
        )
    status = Status.FAIL if cls.bad else Status.PASS
    crit = " (critical)" if spec.critical else ""
    return GateResult(name, status, cls.relative, thr, cls.reason + crit, cls.interval, cls.p_value, blocking=blocking)


def score_gate(
    metric_gates: list[tuple[MetricSpec, GateResult]], cfg: GatesSection, unusable: str | None = None
) -> GateResult:
    """Kayenta's score: per group the share of metrics that passed, weighted by group.

    ``unusable``: why performance cannot be judged in this run (simulated latency…): the score is
    then not applied, whatever its metrics' sample counts, and blocks nothing."""
    thr = f"≥ {cfg.score.pass_:.0f} (marginal {cfg.score.marginal:.0f})"
    applied = [(s, g) for s, g in metric_gates if g.status in (Status.PASS, Status.FAIL)]
    if not metric_gates:  # gates.metrics: [] is a choice, not missing data
        return GateResult(
            "score", Status.NOT_APPLIED, None, thr, "not applied: no metric is configured (gates.metrics)"
        )
    if unusable is not None:
        return GateResult("score", Status.NOT_APPLIED, None, thr, f"not applied: {unusable}", blocking=False)
    if any(g.status == Status.NOT_APPLIED and g.observed is not None for _, g in metric_gates) and not applied:
        return GateResult("score", Status.NOT_APPLIED, None, thr, "not applied: every metric was not applied")
    if not applied:
        return GateResult("score", Status.NO_DATA, None, thr, "no metric could be classified")
    total = weight = 0.0
    parts = []
    for group, w in cfg.groups.items():
        members = [g for s, g in applied if s.group == group]
        if not members:
            continue
        share = sum(g.status == Status.PASS for g in members) / len(members)
        total += w * share
        weight += w
        parts.append(f"{group} {share:.0%}")
    score = 100 * total / weight
    if score >= cfg.score.pass_:
        status = Status.PASS
    elif score >= cfg.score.marginal:
        status = Status.INCONCLUSIVE
    else:
        status = Status.FAIL
    word = {Status.PASS: "pass", Status.INCONCLUSIVE: "marginal", Status.FAIL: "below marginal"}[status]
    return GateResult("score", status, score, thr, f"score {score:.0f} ({', '.join(parts)}): {word}")


def latency_tail_gate(
    ev: Evidence, limit: float | None, cfg: GatesSection, shift_passed: bool, q: float = 0.95, alpha: float = 0.005
) -> GateResult:
    """The q-th percentile ratio (candidate / baseline) against its limit (gates/judge/tail.py).

    FAIL when the tail is significantly higher (one-sided at ``alpha``, this gate's share of the
    family's error; the stage-wise p at the final look of an adaptive load) and the ratio exceeds
    the limit; PASS when its interval is within the limit. A tail needs many more samples than a
    median to be pinned down: when the latency shift test has already certified the distribution
    within its allowed effect (``shift_passed``), an undecided tail is reported but does not hold
    the verdict.
    """
    pct = round(q * 100)
    name, key = f"latency_p{pct}_ratio", f"gates.latency_p{pct}_ratio_max"
    if limit is None:
        return GateResult(name, Status.NOT_APPLIED, None, "—", f"no threshold configured ({key})")
    thr = f"≤ {limit:.2f}"
    b, c = (finite(x) for x in ev.series.get("latency_ms", ((), ())))
    b, c = b[b > 0], c[c > 0]
    few = b.size < cfg.min_requests or c.size < cfg.min_requests
    if few and _perf_unusable(ev):  # not judged anyway: too few samples block nothing either
        why = f"{_not_applied_sim(ev)}; {b.size} and {c.size} successful requests (baseline, candidate)"
        return GateResult(name, Status.NOT_APPLIED, None, thr, why, blocking=False)
    if few:
        return GateResult(
            name,
            Status.NO_DATA,
            None,
            thr,
            f"too few successful requests (baseline {b.size}, candidate {c.size}; need {cfg.min_requests})",
        )
    b, c, cut = steady_window(b, c)  # the measured window starts where the series is stationary
    seq = None
    test = quantile_test(b, c, q)
    if ev.looks and test is not None:
        seq = tail_boundary(test, final_look(ev.looks, b.size, c.size), alpha)
    t = judge_quantile(b, c, q, limit, cfg.confidence, alpha, seq)
    if cut:
        t = dataclasses.replace(t, reason=f"{t.reason} (warm-up: first {cut} requests per arm cut, MSER-5)")
    if t.status == "no_data":  # too few for this quantile: undecided, like an interval too wide
        t = dataclasses.replace(t, status="undecided", reason=f"{t.reason}: run longer to judge the tail")
    if _perf_unusable(ev):
        return GateResult(
            name,
            Status.NOT_APPLIED,
            t.observed,
            thr,
            f"{_not_applied_sim(ev)}; measured {t.reason} is not the shipped engine's",
            t.interval,
            t.p_value,
            blocking=False,
        )
    short = min(b.size, c.size)
    if q >= 0.99 and short < P99_MIN_REQUESTS:  # issue 30: never certified on what cannot hold a p99
        advisory = "; advisory: the latency shift test passed" if shift_passed else ""
        why = (
            f"{t.reason}; a p99 on {short} requests per arm rests on {short // 100} requests beyond it "
            f"(fewer than {P99_MIN_REQUESTS} per arm): not certified either way{advisory}"
        )
        return GateResult(
            name, Status.INCONCLUSIVE, t.observed, thr, why, t.interval, t.p_value, blocking=not shift_passed
        )
    if t.status in ("pass", "fail"):
        status = Status.PASS if t.status == "pass" else Status.FAIL
        return GateResult(name, status, t.observed, thr, t.reason, t.interval, t.p_value)
    advisory = "; advisory: the latency shift test passed" if shift_passed else ""
    return GateResult(
        name,
        Status.INCONCLUSIVE,
        t.observed,
        thr,
        f"{t.reason}: run longer to certify the tail{advisory}",
        t.interval,
        t.p_value,
        blocking=not shift_passed,
    )


def tail_gates(ev: Evidence, cfg: GatesSection, shift_passed: bool) -> tuple[GateResult, ...]:
    """p95 (always shown) and p99 (when configured); together they spend one half of the verdict's
    false-FAIL budget (stats.half_budget), split evenly (Bonferroni), the metric shift tests the other
    half: the A/A false-FAIL rate stays ≤ (1 − confidence)/2."""
    limits = [(0.95, cfg.latency_p95_ratio_max)]
    if cfg.latency_p99_ratio_max is not None:
        limits.append((0.99, cfg.latency_p99_ratio_max))
    alpha = half_budget(cfg.confidence) / max(sum(lim is not None for _, lim in limits), 1)
    return tuple(latency_tail_gate(ev, lim, cfg, shift_passed, q, alpha) for q, lim in limits)


def generator_gate(ev: Evidence) -> GateResult:
    """A saturated load generator measures itself, not the model: never judge on it."""
    name = "load_generator"
    if not ev.series:
        return GateResult(name, Status.NOT_APPLIED, None, "not saturated", "no load was generated")
    if ev.generator_problem:
        return GateResult(name, Status.INCONCLUSIVE, None, "not saturated", ev.generator_problem)
    return GateResult(name, Status.PASS, None, "not saturated", ev.generator_summary or "the generator kept up")


def server_failures_gate(ev: Evidence) -> GateResult:
    """Failed inferences counted by Triton itself (OOMs and model exceptions land here)."""
    name = "server_failures"
    if ev.server_failures is None:
        return GateResult(name, Status.NOT_APPLIED, None, "0", "no server metrics (not a local Triton)")
    b, c = ev.server_failures
    if b > 0:
        return GateResult(
            name,
            Status.INCONCLUSIVE,
            c,
            "0",
            f"the baseline model failed {b:.0f} inferences on the server too: the server is unhealthy",
        )
    if c > 0:
        return GateResult(name, Status.FAIL, c, "0", f"the candidate model failed {c:.0f} inferences on the server")
    return GateResult(name, Status.PASS, c, "0", "no failed inference on the server for either model")


def error_rate_gate(ev: Evidence, limit: float) -> GateResult:
    name = "error_rate"
    thr = f"≤ {limit:.4g}"
    if _missing(ev.candidate_error_rate) or ev.candidate_requests == 0:
        return GateResult(name, Status.NO_DATA, None, thr, "no candidate requests were measured")
    c = float(ev.candidate_error_rate)  # type: ignore[arg-type]
    if ev.server_stall:  # which arm's requests were in flight when the server froze is chance
        return GateResult(name, Status.INCONCLUSIVE, c, thr, ev.server_stall)
    # The baseline first: when it fails too, the measurement (server, network, client) is broken
    # and the candidate's errors say nothing about the candidate.
    if _missing(ev.baseline_error_rate) or float(ev.baseline_error_rate) > limit:  # type: ignore[arg-type]
        b = ev.baseline_error_rate
        seen = f"{b:.2%}" if b is not None and math.isfinite(b) else "unknown"
        return GateResult(
            name,
            Status.INCONCLUSIVE,
            c,
            thr,
            f"baseline itself failed {seen} of its requests: the measurement is not trustworthy",
        )
    if c > limit:
        return GateResult(name, Status.FAIL, c, thr, f"candidate error rate {c:.2%} above {limit:.2%}")
    return GateResult(name, Status.PASS, c, thr, f"candidate error rate {c:.2%} of {ev.candidate_requests} requests")


def kl_gate(ev: Evidence, limit: float | None) -> GateResult:
    """``mean_kl``: the full-vocabulary KL when measured, else the top-k lower bound, labelled as such."""
    if ev.mean_kl_full is not None:
        what = "full-vocabulary mean KL"
        return threshold_gate("mean_kl", ev.mean_kl_full, limit, ev.golden_prompts, what, minimum=False)
    k = f"top-{ev.kl_top_k}" if ev.kl_top_k else "top-k"
    what = f"mean KL (a lower bound: the baseline's {k} tokens + the rest)"
    return threshold_gate("mean_kl", ev.mean_kl, limit, ev.golden_prompts, what, minimum=False)


def threshold_gate(
    name: str, observed: float | None, limit: float | None, prompts: int, what: str, *, minimum: bool
) -> GateResult:
    if limit is None:
        return GateResult(name, Status.NOT_APPLIED, finite_or_none(observed), "—", "no threshold configured")
    thr = f"{'≥' if minimum else '≤'} {limit:.3g}"
    if prompts == 0 or _missing(observed):
        return GateResult(name, Status.NO_DATA, None, thr, f"no {what} measured")
    o = float(observed)  # type: ignore[arg-type]
    ok = o >= limit if minimum else o <= limit
    word = ("meets" if minimum else "within") if ok else ("below" if minimum else "above")
    return GateResult(
        name,
        Status.PASS if ok else Status.FAIL,
        o,
        thr,
        f"{what} {o:.4g} over {prompts} golden prompts ({word} {limit:.3g})",
    )


def judge(ev: Evidence, cfg: GatesSection) -> Verdict:
    """The performance and drift-threshold gates alone, decided (benchmarks and tests judge these
    directly; a run's verdict adds capacity and quality gates in gates/judge/decide.py)."""
    return decide(performance_gates(ev, cfg))


def performance_gates(ev: Evidence, cfg: GatesSection) -> tuple[GateResult, ...]:
    metrics = [(spec, metric_gate(ev, spec, cfg)) for spec in cfg.metrics]
    shift_passed = any(s.name == "latency_ms" and g.status == Status.PASS for s, g in metrics)
    gates = (
        generator_gate(ev),
        *(g for _, g in metrics),
        score_gate(metrics, cfg, _perf_unusable(ev)),
        *tail_gates(ev, cfg, shift_passed),
        error_rate_gate(ev, cfg.error_rate_max),
        server_failures_gate(ev),
        *([GateResult("server_stall", Status.INCONCLUSIVE, None, "none", ev.server_stall)] if ev.server_stall else []),
        threshold_gate(
            "exact_match_rate",
            ev.exact_match_rate,
            cfg.exact_match_rate_min,
            ev.golden_prompts,
            "greedy exact-match rate",
            minimum=True,
        ),
        threshold_gate(
            "top1_agreement",
            ev.top1_agreement,
            cfg.top1_agreement_min,
            ev.golden_prompts,
            "next-token top-1 agreement",
            minimum=True,
        ),
        kl_gate(ev, cfg.mean_kl_max),
        *(
            [
                cost_gate(
                    ev.baseline_tokens_per_s,
                    ev.candidate_tokens_per_s,
                    cfg.cost,
                    _perf_unusable(ev) is not None,
                    _perf_unusable(ev) or "",
                )
            ]
            if cfg.cost
            else []
        ),
    )
    return gates


__all__ = [
    "FAIL",
    "INCONCLUSIVE",
    "PASS",
    "Evidence",
    "GateResult",
    "Status",
    "Verdict",
    "decide",
    "judge",
    "performance_gates",
]
