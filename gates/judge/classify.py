"""Per-metric classification, Kayenta style: Pass / High / Low / NoData.

A metric is High (or Low) when the Mann-Whitney U test rejects "no shift" at the judge's
confidence *and* the Hodges-Lehmann estimate of the relative shift exceeds the allowed effect.
Both are needed: significance alone flags tiny, harmless shifts on large samples; effect size
alone flags noise on small ones. Positive metrics (latency, tokens/s) are compared on the log
scale, so the shift is a ratio and the allowed effect is relative.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from gates.judge.adaptive import Look, adjusted_two_sided_p, final_look, mw_z
from gates.judge.stats import finite, mann_whitney_hl, remove_outliers_pooled
from gates.judge.steady import rank_inflation, steady_window

PASS, HIGH, LOW, NODATA = "Pass", "High", "Low", "NoData"


@dataclasses.dataclass(frozen=True)
class Classification:
    label: str  # Pass | High | Low | NoData
    bad: bool  # True when the label is a change in the metric's bad direction
    n_baseline: int
    n_candidate: int
    removed: int  # outliers dropped (both arms)
    relative: float | None  # HL relative shift estimate (+0.1 = candidate 10% higher)
    interval: tuple[float, float] | None
    p_value: float | None
    reason: str


def classify(
    baseline: Sequence[float] | None,
    candidate: Sequence[float] | None,
    *,
    direction: str,
    allowed_effect: float,
    confidence: float,
    min_samples: int,
    remove_outliers: bool = True,
    looks: Sequence[Look] = (),
) -> Classification:
    """``looks``: the load was adaptive (gates/judge/adaptive.py); significance is then judged on
    the stage-wise p-value at the final look, against the same alpha-spending boundary the stopping
    rule used, instead of the fixed test's p."""
    b, c = finite(baseline), finite(candidate)
    n_finite = (int(b.size), int(c.size))
    # min_samples counts the measured requests (gates.min_requests, what the load stage runs
    # until): dropping gross outliers is part of the analysis, not a reason to call it no data
    enough = b.size >= min_samples and c.size >= min_samples
    b, c, cut = steady_window(b, c)  # the measured window starts where the series is stationary
    removed = 0
    if remove_outliers:
        b2, c2 = remove_outliers_pooled(b, c)  # one pair of fences for both arms: the ranks stay exchangeable
        removed = (b.size - b2.size) + (c.size - c2.size)
        b, c = b2, c2
    if not enough or b.size < 2 or c.size < 2:
        return Classification(
            NODATA,
            False,
            int(b.size),
            int(c.size),
            removed,
            None,
            None,
            None,
            f"too few samples (baseline {b.size}, candidate {c.size}; need {min_samples})",
        )
    positive = bool((b > 0).all() and (c > 0).all())
    # requests in correlated runs (a queue, a drift) are worth fewer independent ones: the test and
    # its interval are taken on the effective sample (1 for independent requests)
    inflation = rank_inflation(b, c)
    test = mann_whitney_hl(b, c, confidence=confidence, log_scale=positive, inflation=inflation)
    rel, lo, hi = test.relative()
    scale_note = ""
    if not positive:
        # a value <= 0 (a zero-token response) has no log: the shift is then taken on the raw
        # scale, but still expressed relative to the baseline's median, as the allowance is
        # relative (the raw shift itself compared with 0.05 made a -3% change "-151%")
        centre = float(np.median(b))
        if centre <= 0:
            return Classification(
                NODATA, False, int(b.size), int(c.size), removed, None, None, None,
                f"values <= 0 and a baseline median of {centre:g}: no relative scale for the allowed effect",
            )  # fmt: skip
        rel, lo, hi = test.shift / centre, test.low / centre, test.high / centre
        scale_note = "; raw-scale HL relative to the baseline median (values <= 0 present)"
    alpha = 1 - confidence
    p_value, sequential = test.p_value, ""
    if looks:
        z = mw_z(b, c) / math.sqrt(inflation)  # a rank statistic: the same on the raw and the log scale
        schedule = final_look(looks, *n_finite)
        p_value, bound = adjusted_two_sided_p(z, schedule, confidence)
        sequential = f"; adaptive load, look {len(schedule)}: |z|={abs(z):.2f} vs boundary {bound:.2f}"
    significant = p_value < alpha
    if significant and rel > allowed_effect:
        label = HIGH
    elif significant and rel < -allowed_effect:
        label = LOW
    else:
        label = PASS
    bad = (label == HIGH and direction in ("increase", "either")) or (
        label == LOW and direction in ("decrease", "either")
    )
    verdict_word = {PASS: "no shift beyond the allowed effect", HIGH: "higher", LOW: "lower"}[label]
    reason = (
        f"{label}: candidate {rel:+.1%} (HL, {100 * confidence:.3g}% CI {lo:+.1%} to {hi:+.1%}), "
        f"Mann-Whitney p={_p(p_value)}{' (adjusted)' if sequential else ''}, allowed ±{allowed_effect:.0%}; "
        f"{verdict_word}"
        + (f"; {removed} outliers removed" if removed else "")
        + scale_note
        + sequential
        + (f"; warm-up: first {cut} requests per arm cut (MSER-5)" if cut else "")
        + _dependence(inflation, b.size + c.size)
    )
    return Classification(label, bad, int(b.size), int(c.size), removed, rel, (lo, hi), p_value, reason)


def _dependence(inflation: float, n: int) -> str:
    if inflation <= 1.0:
        return ""
    return f"; correlated requests: worth {n / inflation:.0f} independent of {n} (variance ×{inflation:.1f})"


def _p(p: float) -> str:
    return "<1e-6" if p < 1e-6 else (f"{p:.2g}" if not math.isnan(p) else "nan")
