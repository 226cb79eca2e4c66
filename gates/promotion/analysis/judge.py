"""The canary's windows at one step → PASS, FAIL or NODATA, by the PR gate's own judge.

The windows of a step are the looks of one group-sequential test (gates/judge/adaptive.py): look
``k`` judges everything both arms served since the step began, with spending time
``k / max_windows``. So an A/A canary keeps the PR gate's family-wise false-FAIL rate however many
windows it takes, a clear regression is settled at the first window, and at the last window every
test decides (FAIL, else PASS), as the fixed design does.

- latency (``latency_ms``): the shift (Mann-Whitney z, Hodges-Lehmann estimate, ``allowed_effect``)
  and the tail (upper-tail rank test and the p95 / p99 ratio against ``latency_p9x_ratio_max``),
  :func:`gates.judge.adaptive.settle`;
- time to first token (``ttft_ms``): the same shift test, its own share of the family's error;
- error rate, server failures (when the provider counts them) and drift on golden prompts (top-1
  agreement of the canary on stable's greedy continuation): the PR gate's absolute gates
  (gates/judge/policy.py), whose reasons (shift, interval, p-value) are the ones shown.

NODATA — a window with fewer than ``min_requests`` per arm, a metric missing, an error rate that
cannot be trusted (stable failing too) or a test not settled yet — holds the step: no weight
change, the next window is analysed. NODATA is never a PASS.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from gates.config.analysis import P99_RATIO_DEFAULT, AnalysisMetric, AnalysisSection
from gates.config.schema import GatesSection, MetricSpec
from gates.judge.adaptive import FAIL, PASS, Decision, Look, Plan, plan_for, settle
from gates.judge.policy import (
    Evidence,
    GateResult,
    Status,
    error_rate_gate,
    performance_gates,
    server_failures_gate,
    threshold_gate,
)
from gates.judge.stats import metric_confidence
from gates.promotion.analysis.records import ArmSamples, WindowData


class WindowStatus(StrEnum):
    PASS = "PASS"  # the step's weight holds up: move to the next
    FAIL = "FAIL"  # a regression: counts toward promotion.failure_limit, then rolls back
    NODATA = "NODATA"  # not decided: the step holds, the next window is analysed


@dataclasses.dataclass(frozen=True)
class Judgement:
    status: WindowStatus
    reason: str
    figures: dict[str, Any]  # what the ledger keeps and the comment shows


def analysis_metrics(gates: GatesSection, analysis: AnalysisSection, itl: bool = False) -> list[AnalysisMetric]:
    """``analysis.metrics``, else the pipeline's latency allowance for latency_ms and ttft_ms (what a
    proxy sees of each request), and itl_ms where the served models' own records are read (``itl``)."""
    if analysis.metrics:
        return list(analysis.metrics)
    own = {m.name: m.allowed_effect for m in gates.metrics}
    latency = own.get("latency_ms", 0.05)
    metrics = [
        AnalysisMetric(name="latency_ms", allowed_effect=latency),
        AnalysisMetric(name="ttft_ms", allowed_effect=own.get("ttft_ms", latency)),
    ]
    if itl:
        metrics.append(AnalysisMetric(name="itl_ms", allowed_effect=own.get("itl_ms", latency)))
    return metrics


def analysis_gates(gates: GatesSection, analysis: AnalysisSection, drift: bool, itl: bool = False) -> GatesSection:
    """The pipeline's gates with the analysis section's overrides (null: the pipeline's value)."""
    metrics = [
        MetricSpec(name=m.name, direction="increase", allowed_effect=m.allowed_effect, critical=True)
        for m in analysis_metrics(gates, analysis, itl)
    ]

    def pick(own: float | None, theirs: float | None) -> float | None:
        return own if own is not None else theirs

    return gates.model_copy(
        update={
            "metrics": metrics,
            "groups": {"performance": 1.0},
            "latency_p95_ratio_max": pick(analysis.latency_p95_ratio_max, gates.latency_p95_ratio_max),
            "latency_p99_ratio_max": pick(analysis.latency_p99_ratio_max, gates.latency_p99_ratio_max)
            or P99_RATIO_DEFAULT,
            "error_rate_max": pick(analysis.error_rate_max, gates.error_rate_max),
            "top1_agreement_min": pick(analysis.top1_agreement_min, gates.top1_agreement_min) if drift else None,
            "confidence": pick(analysis.confidence, gates.confidence),
            "min_requests": analysis.min_requests,
            "exact_match_rate_min": None,
            "mean_kl_max": None,
            "cost": None,
        }
    )


def _looks(windows: Sequence[WindowData], field: str, analysis: AnalysisSection) -> tuple[Look, ...]:
    """One look per window that met the minimum, on the cumulative counts of ``field``."""
    looks: list[Look] = []
    nb = nc = 0
    for w in windows:
        nb += len(getattr(w.stable, field))
        nc += len(getattr(w.canary, field))
        if w.stable.requests >= analysis.min_requests and w.canary.requests >= analysis.min_requests:
            looks.append(Look(nb, nc, min((len(looks) + 1) / analysis.max_windows, 1.0)))
    return tuple(looks)


# the metrics judged beside latency_ms, and why a window without them decides nothing
MISSING = {
    "ttft_ms": "no time to first token measured for both arms",
    "itl_ms": "no inter-token latency measured for both arms (it needs the served models' request logs: "
    "serve the canary with `gates canary serve PIPELINE`)",
}


def _ttft_plan(latency_plan: Plan, metric: AnalysisMetric, cfg: GatesSection) -> Plan:
    return dataclasses.replace(
        latency_plan,
        allowed_effect=metric.allowed_effect,
        tail_limits=(),
        shift_confidence=metric_confidence(cfg.confidence, "increase", len(cfg.metrics)),
    )


def judge_step(
    windows: Sequence[WindowData],
    gates: GatesSection,
    analysis: AnalysisSection,
    top1_agreement: float | None = None,
    golden_prompts: int = 0,
    explain_holds: bool = True,
) -> Judgement:
    """The step's decision after its last window (``windows``: all of this step's, oldest first).

    ``explain_holds``: figures of the fixed-design gates (shift with its interval, tail ratios) for a
    window that decides nothing too; the benchmark turns it off (they are the costly part, and the
    decision never depends on them)."""
    if not windows:
        raise ValueError("judge_step needs at least one window")
    itl = all(w.measures_itl for w in windows)
    cfg = analysis_gates(gates, analysis, drift=golden_prompts > 0, itl=itl)
    stable = canary = ArmSamples()
    for w in windows:
        stable, canary = stable.merge(w.stable), canary.merge(w.canary)
    last = windows[-1]
    figures: dict[str, Any] = {
        "window": len(windows),
        "max_windows": analysis.max_windows,
        "source": last.source,
        "this_window": {"stable": last.stable.figures(), "canary": last.canary.figures()},
        "step": {"stable": stable.figures(), "canary": canary.figures()},
    }
    ev = Evidence(
        series={
            "latency_ms": (stable.latency_ms, canary.latency_ms),
            "ttft_ms": (stable.ttft_ms, canary.ttft_ms),
            "itl_ms": (stable.itl_ms, canary.itl_ms),
        },
        baseline_error_rate=stable.errors / stable.requests if stable.requests else None,
        candidate_error_rate=canary.errors / canary.requests if canary.requests else None,
        candidate_requests=canary.requests,
        exact_match_rate=None,
        top1_agreement=top1_agreement,
        mean_kl=None,
        golden_prompts=golden_prompts,
        latency_simulated=False,
        generator_summary="both arms in the same windows",
        server_failures=(
            (stable.server_failures or 0.0, canary.server_failures or 0.0)
            if stable.server_failures is not None or canary.server_failures is not None
            else None
        ),
        looks=_looks(windows, "latency_ms", analysis),
    )
    absolute = [
        error_rate_gate(ev, cfg.error_rate_max),
        server_failures_gate(ev),
        threshold_gate(
            "top1_agreement", top1_agreement, cfg.top1_agreement_min, golden_prompts, "next-token top-1 agreement",
            minimum=True,
        ),
    ]  # fmt: skip
    gate_results: dict[str, GateResult] = {g.name: g for g in absolute}

    def explain() -> None:
        gate_results.update(
            {g.name: g for g in performance_gates(ev, cfg) if g.name not in ("load_generator", "score")}
        )
        figures["gates"] = [g.to_json() for g in gate_results.values()]

    short = last.stable.requests < analysis.min_requests or last.canary.requests < analysis.min_requests
    if short or not ev.looks:
        why = (
            f"too few requests in window {len(windows)} (stable {last.stable.requests}, "
            f"canary {last.canary.requests}; need {analysis.min_requests} per arm)"
        )
        if explain_holds:
            explain()
        return _done(WindowStatus.NODATA, why, figures)
    plan = plan_for(cfg, analysis.pass_error)
    decisions: dict[str, Decision] = {"latency_ms": settle(stable.latency_ms, canary.latency_ms, ev.looks, plan)}
    for metric in analysis_metrics(gates, analysis, itl):
        if metric.name in MISSING:
            looks = _looks(windows, metric.name, analysis)
            b, c = getattr(stable, metric.name), getattr(canary, metric.name)
            if not looks or len(c) < 2 or len(b) < 2:
                explain()
                return _done(WindowStatus.NODATA, MISSING[metric.name], figures)
            decisions[metric.name] = settle(b, c, looks, _ttft_plan(plan, metric, cfg))
    figures["sequential"] = {name: d.reason for name, d in decisions.items()}
    decided = any(d.status == FAIL for d in decisions.values()) or all(d.status == PASS for d in decisions.values())
    if decided or explain_holds or any(g.status == Status.FAIL for g in absolute):
        explain()
    failed = [_fail_reason(name, d, gate_results) for name, d in decisions.items() if d.status == FAIL]
    failed += [f"{g.name}: {g.reason}" for g in absolute if g.status == Status.FAIL]
    if failed:
        return _done(WindowStatus.FAIL, "; ".join(failed), figures)
    unsure = [f"{g.name}: {g.reason}" for g in absolute if g.status in (Status.NO_DATA, Status.INCONCLUSIVE)]
    unsure += [f"{name}: {d.reason}" for name, d in decisions.items() if d.status != PASS]
    if unsure:
        return _done(WindowStatus.NODATA, "; ".join(unsure), figures)
    shown = [gate_results[n] for n in ("latency_ms shift", "ttft_ms shift", "itl_ms shift") if n in gate_results]
    return _done(WindowStatus.PASS, "; ".join(f"{g.name}: {g.reason}" for g in shown) or "passed", figures)


def _fail_reason(metric: str, decision: Decision, gates: dict[str, GateResult]) -> str:
    """The failed test named with the judge's own figures: the shift (HL) and its interval, or the
    tail ratio and its interval."""
    parts = []
    for t in decision.tests:
        if t.status != FAIL:
            continue
        gate = gates.get(f"{metric} shift") if t.name == "shift" else gates.get(f"latency_{t.name}_ratio")
        figure = gate.reason if gate is not None else ""
        label = f"{metric} shift" if t.name == "shift" else f"{metric} {t.name}"
        z = f"z={t.z:.2f} ≥ boundary {t.boundary:.2f}" if t.z is not None and t.boundary is not None else ""
        parts.append(f"{label}: {figure} [{z}]")
    return "; ".join(parts) or f"{metric}: {decision.reason}"


def _done(status: WindowStatus, reason: str, figures: dict[str, Any]) -> Judgement:
    figures["decision"] = status.value
    figures["reason"] = reason
    return Judgement(status, reason, figures)
