"""Quality gates with statistics: per-item evidence of both arms -> an entry per gate and its GateResult.

Every entry carries both arms' estimates with intervals, the paired difference with its interval,
a p-value where a test applies, the smallest effect the suite can detect (80% power by default)
and a status. Bounds are one-sided at ``gates.confidence`` (the interval shown is two-sided at
``1 - 2·(1 - confidence)``): PASS when the whole interval is on the good side of the threshold,
FAIL when it is wholly on the bad side, else INCONCLUSIVE with the items that would settle it.
No items, or a threshold left null, never passes: the gate reports no data or is not applied.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

from gates.config.schema import GatesSection
from gates.judge.paired import (
    Interval,
    PairedAccuracy,
    bootstrap_mean,
    bootstrap_ratio,
    detectable_effect,
    items_for_effect,
    non_inferiority,
    paired_difference,
    two_sided,
)
from gates.judge.sampled import paired_rates
from gates.judge.verdict import GateResult, Status

ACCURACY, LOGLIKELIHOOD, PERPLEXITY, DRIFT, LM_EVAL = "accuracy", "loglikelihood", "perplexity", "drift", "lm_eval"
# how the drop's interval is made (gates/judge/paired.py), stated beside it
DROP_METHOD = "widest of paired bootstrap and Newcombe method 10, upper end >= exact Clopper-Pearson"
MEAN_METHOD = "wider of bootstrap and Student-t"
# below these sizes the intervals' coverage was not shown to hold (a percentile bootstrap covered
# 77-84% at 5-10 documents and 81-83% at 10-18 prompts for 90%): such a gate never PASSes
MIN_DOCUMENTS, MIN_PROMPTS = 10, 20


@dataclasses.dataclass(frozen=True)
class QualityEntry:
    name: str
    kind: str
    n: int
    baseline: Interval | None
    candidate: Interval | None
    difference: Interval  # accuracy: baseline - candidate (the drop); perplexity: relative increase
    p_value: float | None
    detectable_effect: float | None
    status: str
    threshold: str
    reason: str
    # sampled decoding of the entry's items (empty: every item greedy): distinct temperatures
    # and repeats per item, shown in report.json as "temperature" and "repeats"
    temperature: tuple[float, ...] = ()
    repeats: tuple[int, ...] = ()

    def to_json(self) -> dict[str, Any]:
        def fin(x: float | None) -> float | None:
            return x if x is not None and math.isfinite(x) else None

        out = {
            "name": self.name,
            "kind": self.kind,
            "n": self.n,
            "baseline": self.baseline.to_json() if self.baseline else None,
            "candidate": self.candidate.to_json() if self.candidate else None,
            "difference": self.difference.to_json(),
            "p_value": fin(self.p_value),
            "detectable_effect": fin(self.detectable_effect),
            "status": self.status,
            "threshold": self.threshold,
            "reason": self.reason,
        }
        if self.temperature:
            out |= {"temperature": list(self.temperature), "repeats": list(self.repeats)}
        return out

    def gate(self) -> GateResult:
        d = self.difference
        interval = (d.low, d.high) if math.isfinite(d.low) and math.isfinite(d.high) else None
        observed = d.estimate if math.isfinite(d.estimate) else None
        return GateResult(self.name, self.status, observed, self.threshold, self.reason, interval, self.p_value)


def _ci(iv: Interval, fmt: str = ".3f") -> str:
    return f"{iv.estimate:{fmt}} ({iv.low:{fmt}} to {iv.high:{fmt}})"


def _more(more: int | None) -> str:
    return f"about {more} more items would settle it" if more else "the estimate sits on the margin"


def accuracy_entry(
    name: str, kind: str, baseline: Sequence[bool], candidate: Sequence[bool], cfg: GatesSection
) -> list[QualityEntry]:
    """Paired task accuracy: the drop gate (non-inferiority) and, when configured, recovery."""
    if not baseline:
        return [_no_items(name, kind, cfg)]
    pa = paired_difference(baseline, candidate, two_sided(cfg.confidence))
    summary = (
        f"baseline {_ci(pa.baseline)}, candidate {_ci(pa.candidate)} on {pa.n} items (Wilson); drop "
        f"{_ci(pa.drop)} ({DROP_METHOD}), McNemar p={pa.p_value:.2g} ({pa.only_baseline} only baseline right, "
        f"{pa.only_candidate} only candidate)"
    )
    return _accuracy_entries(name, kind, pa, cfg, summary)


def sampled_accuracy_entry(
    name: str,
    kind: str,
    baseline: Sequence[Sequence[bool]],
    candidate: Sequence[Sequence[bool]],
    cfg: GatesSection,
    temperatures: Sequence[float],
) -> list[QualityEntry]:
    """Paired per-item pass rates over sampled repeats (outcomes per repeat, the same seeds in
    both arms), judged by the same rule as :func:`accuracy_entry`; items with one outcome (greedy
    rows, or one draw) count as 0/1. Every item with one outcome: exactly :func:`accuracy_entry`."""
    temps = tuple(sorted({t for t in temperatures if t > 0}))
    reps = tuple(sorted({len(o) for o, t in zip(baseline, temperatures, strict=True) if t > 0}))
    if not baseline:
        return [_no_items(name, kind, cfg)]
    if all(len(o) == 1 for o in baseline):
        flat = accuracy_entry(name, kind, [o[0] for o in baseline], [o[0] for o in candidate], cfg)
    else:
        pa = paired_rates(baseline, candidate, two_sided(cfg.confidence))
        draws = sum(len(o) for o in baseline)
        summary = (
            f"mean pass rate over {draws} draws per arm (temperature {_list(temps)}, {_list(reps)} per sampled "
            f"item): baseline {_ci(pa.baseline)}, candidate {_ci(pa.candidate)} on {pa.n} items; drop "
            f"{_ci(pa.drop)} ({DROP_METHOD}), paired sign-flip p={pa.p_value:.2g} ({pa.only_baseline} draws "
            f"only baseline passed, {pa.only_candidate} only candidate)"
        )
        flat = _accuracy_entries(name, kind, pa, cfg, summary)
    return [dataclasses.replace(e, temperature=temps, repeats=reps) if temps else e for e in flat]


def _list(values: Sequence[float]) -> str:
    return "/".join(f"{v:g}" for v in values)


def _no_items(name: str, kind: str, cfg: GatesSection) -> QualityEntry:
    margin = cfg.accuracy_drop_max
    thr = f"drop < {margin:.3g}" if margin is not None else "—"
    nan = Interval(math.nan, math.nan, math.nan)
    status = Status.NO_DATA if margin is not None else Status.NOT_APPLIED
    return QualityEntry(
        name, kind, 0, None, None, nan, None, None, status, thr, "no items with a task check were scored"
    )


def _accuracy_entries(name: str, kind: str, pa: PairedAccuracy, cfg: GatesSection, summary: str) -> list[QualityEntry]:
    margin = cfg.accuracy_drop_max
    thr = f"drop < {margin:.3g}" if margin is not None else "—"
    mde = detectable_effect(pa.n, pa.baseline.estimate, cfg.confidence, cfg.power, pa.score_variance)
    out = [_drop_entry(name, kind, pa, mde, cfg, summary, thr)]
    if cfg.recovery_min is not None:
        out.append(_recovery_entry(f"{name} recovery", kind, pa, mde, cfg))
    return out


def _drop_entry(
    name: str, kind: str, pa: PairedAccuracy, mde: float, cfg: GatesSection, summary: str, thr: str
) -> QualityEntry:
    margin = cfg.accuracy_drop_max
    if margin is None:
        status, reason = Status.NOT_APPLIED, f"{summary}; no margin configured (gates.accuracy_drop_max)"
    else:
        dec = non_inferiority(pa.drop, margin, pa.n, pa.item_sd, cfg.confidence)
        status = Status(dec.status)
        if status == Status.PASS:
            reason = f"{summary}: the drop is below {margin:.3g} with {cfg.confidence:.0%} confidence"
        elif status == Status.FAIL:
            reason = f"{summary}: the drop exceeds {margin:.3g} with {cfg.confidence:.0%} confidence"
        else:
            reason = f"{summary}: the interval straddles {margin:.3g}; {_more(dec.more_items)}"
        if math.isfinite(mde) and mde > margin:
            need = items_for_effect(margin, pa.baseline.estimate, cfg.confidence, cfg.power, pa.score_variance)
            reason += f" (this suite detects drops of {mde:.3g}; {need} items would detect {margin:.3g})"
    return QualityEntry(name, kind, pa.n, pa.baseline, pa.candidate, pa.drop, pa.p_value, mde, status, thr, reason)


def _recovery_entry(name: str, kind: str, pa: PairedAccuracy, mde: float, cfg: GatesSection) -> QualityEntry:
    floor = float(cfg.recovery_min or 0.0)
    r = pa.recovery
    thr = f"≥ {floor:.3g}"
    if not math.isfinite(r.estimate):
        status, reason = Status.NO_DATA, "the baseline got no item right: recovery is undefined"
    elif r.low >= floor:
        status, reason = Status.PASS, f"recovery {_ci(r)} at least {floor:.3g}"
    elif r.high < floor:
        status, reason = Status.FAIL, f"recovery {_ci(r)} below {floor:.3g}"
    else:
        status, reason = Status.INCONCLUSIVE, f"recovery {_ci(r)} straddles {floor:.3g}: more items needed"
    return QualityEntry(name, kind, pa.n, pa.baseline, pa.candidate, r, pa.p_value, mde, status, thr, reason)


def perplexity_entry(
    baseline_nll: Sequence[float],
    candidate_nll: Sequence[float],
    tokens: Sequence[int],
    cfg: GatesSection,
    name: str = "perplexity",
) -> QualityEntry:
    """Per-document summed NLL (nats) of both arms on the same tokens; gated on the relative increase."""
    limit = cfg.perplexity_increase_max
    thr = f"increase < {limit:.3g}" if limit is not None else "—"
    level = two_sided(cfg.confidence)
    n = len(tokens)
    if n == 0 or sum(tokens) == 0:
        nan = Interval(math.nan, math.nan, math.nan)
        status = Status.NO_DATA if limit is not None else Status.NOT_APPLIED
        return QualityEntry(name, PERPLEXITY, 0, None, None, nan, None, None, status, thr, "no text was scored")
    b_nll = bootstrap_ratio(baseline_nll, [float(t) for t in tokens], level)
    c_nll = bootstrap_ratio(candidate_nll, [float(t) for t in tokens], level)
    base, cand = _exp(b_nll), _exp(c_nll)
    # perplexity ratio = exp(mean NLL difference per token); its interval resamples documents, pairs kept
    diff = bootstrap_ratio([c - b for b, c in zip(baseline_nll, candidate_nll, strict=True)], list(tokens), level)
    rel = Interval(math.expm1(diff.estimate), math.expm1(diff.low), math.expm1(diff.high))
    summary = f"perplexity baseline {_ci(base, '.3f')}, candidate {_ci(cand, '.3f')} over {n} documents ({MEAN_METHOD})"
    if limit is None:
        status, reason = Status.NOT_APPLIED, f"{summary}; no limit configured (gates.perplexity_increase_max)"
    elif rel.high < limit and n < MIN_DOCUMENTS:
        status = Status.INCONCLUSIVE
        reason = f"{summary}: increase {_ci(rel)}; fewer than {MIN_DOCUMENTS} documents: too few to certify it"
    elif rel.high < limit:
        status, reason = Status.PASS, f"{summary}: increase {_ci(rel)} below {limit:.3g}"
    elif rel.low > limit:
        status, reason = Status.FAIL, f"{summary}: increase {_ci(rel)} above {limit:.3g}"
    else:
        status, reason = Status.INCONCLUSIVE, f"{summary}: increase {_ci(rel)} straddles {limit:.3g}: more text needed"
    return QualityEntry(name, PERPLEXITY, n, base, cand, rel, None, None, status, thr, reason)


def _exp(iv: Interval) -> Interval:
    return Interval(math.exp(iv.estimate), math.exp(iv.low), math.exp(iv.high))


def drift_entry(
    name: str,
    values: Sequence[float],
    weights: Sequence[float],
    limit: float | None,
    cfg: GatesSection,
    *,
    minimum: bool,
) -> QualityEntry:
    """A drift metric averaged over prompts with a bootstrap interval over prompts."""
    level = two_sided(cfg.confidence)
    iv = bootstrap_mean(values, level, weights)
    n = sum(1 for v, w in zip(values, weights, strict=True) if math.isfinite(v) and w > 0)
    thr = f"{'≥' if minimum else '≤'} {limit:.3g}" if limit is not None else "—"
    if n == 0:
        status = Status.NO_DATA if limit is not None else Status.NOT_APPLIED
        return QualityEntry(name, DRIFT, 0, None, None, iv, None, None, status, thr, f"no {name} measured")
    text = f"{name} {_ci(iv, '.4g')} over {n} prompts ({MEAN_METHOD})"
    if limit is None:
        status, reason = Status.NOT_APPLIED, f"{text}; no threshold configured"
    else:
        good = iv.low >= limit if minimum else iv.high <= limit
        bad = iv.high < limit if minimum else iv.low > limit
        status = Status.PASS if good else Status.FAIL if bad else Status.INCONCLUSIVE
        word = {Status.PASS: "clears", Status.FAIL: "misses", Status.INCONCLUSIVE: "straddles"}[status]
        reason = f"{text}: the interval {word} {limit:.3g}" + (
            "; more prompts would narrow it" if status == Status.INCONCLUSIVE else ""
        )
        if status == Status.PASS and n < MIN_PROMPTS:
            status, reason = Status.INCONCLUSIVE, f"{reason}; fewer than {MIN_PROMPTS} prompts: too few to certify it"
    return QualityEntry(name, DRIFT, n, None, iv, iv, None, None, status, thr, reason)
