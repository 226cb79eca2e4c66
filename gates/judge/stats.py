"""Statistics for the judge: pure functions, no I/O, deterministic for a given input.

- :func:`mann_whitney_hl`: Mann-Whitney U test with the Hodges-Lehmann shift estimate and its
  distribution-free confidence interval (the order statistics of the pairwise differences).
- :func:`remove_outliers_pooled`: Tukey's fences computed on both arms together, applied to each.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

MAX_PAIRS = 4_000_000  # beyond this, HL uses a deterministic subsample of the pairwise differences


@dataclasses.dataclass(frozen=True)
class ShiftTest:
    n_baseline: int
    n_candidate: int
    p_value: float  # two-sided Mann-Whitney U
    shift: float  # Hodges-Lehmann estimate of candidate - baseline (on the log scale when log_scale)
    low: float
    high: float
    log_scale: bool

    def relative(self) -> tuple[float, float, float]:
        """(estimate, low, high) as relative changes: +0.10 means the candidate is 10% higher."""
        if self.log_scale:
            return math.expm1(self.shift), math.expm1(self.low), math.expm1(self.high)
        return self.shift, self.low, self.high


def finite(values: Sequence[float] | None) -> NDArray[np.float64]:
    arr = np.asarray(values if values is not None else [], dtype=float)
    kept: NDArray[np.float64] = arr[np.isfinite(arr)]
    return kept


# Share of the verdict's false-FAIL budget ``1 − confidence`` that its tests spend, all together.
# Half: the latency family is Bonferroni (metric shifts, then tails), exact under "no change"
# when the effect conditions do not bind (heavy tails: there every significant shift is also beyond
# the allowance), and spending all of it measured 0.9% [0.6-1.6%] on lognormal sigma = 1 latencies
# against a 1% budget; half keeps the whole interval of the measured rate under the budget.
FAMILY_SHARE = 0.5


def half_budget(confidence: float) -> float:
    """Each half of the family (metric shifts; tail quantiles): ``(1 − confidence)·FAMILY_SHARE / 2``."""
    return (1.0 - confidence) * FAMILY_SHARE / 2.0


def metric_confidence(confidence: float, direction: str, metrics: int) -> float:
    """Two-sided confidence of one metric's shift test in a family of ``metrics`` shift tests.

    The metric gates share one half of the verdict's false-FAIL budget (the tail gates the other,
    :func:`half_budget`), split evenly (Bonferroni): each metric may FAIL a run without a change
    with chance ``half_budget / metrics``. A metric with one bad direction spends that on one side
    of a two-sided test, ``either`` on both. With the default metrics (latency and output
    tokens/s) the verdict failed 10.8% of A/A runs at confidence 0.90 when each was tested at the
    full level.
    """
    share = half_budget(confidence) / max(metrics, 1)
    return 1.0 - (share if direction == "either" else 2.0 * share)


def remove_outliers_pooled(
    baseline: NDArray[np.float64], candidate: NDArray[np.float64], k: float = 3.0
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Tukey's fences of the pooled sample, applied to both arms.

    Fences of each arm's own quartiles make the kept samples non-exchangeable under "no
    difference" (an arm whose draw has a wide IQR keeps its tail, the other loses it), and the
    rank test on a skewed latency then rejected 3.3% at alpha 1% (lognormal sigma 1.5, 500 per
    arm). Fences that are a symmetric function of the pooled sample keep the rank test exact.
    """
    pooled = np.concatenate([baseline, candidate])
    if pooled.size < 4:
        return baseline, candidate
    q1, q3 = np.percentile(pooled, [25, 75])
    lo, hi = q1 - k * (q3 - q1), q3 + k * (q3 - q1)
    b: NDArray[np.float64] = baseline[(baseline >= lo) & (baseline <= hi)]
    c: NDArray[np.float64] = candidate[(candidate >= lo) & (candidate <= hi)]
    return b, c


def mann_whitney_hl(
    baseline: NDArray[np.float64],
    candidate: NDArray[np.float64],
    confidence: float = 0.99,
    log_scale: bool = False,
    inflation: float = 1.0,
) -> ShiftTest:
    """``inflation``: the variance of the rank statistic over the independent-request one
    (steady.rank_inflation, ≥ 1): the z is divided and the interval's z multiplied by its root, as
    requests that come in correlated runs are worth fewer independent ones."""
    from scipy.stats import mannwhitneyu, norm

    b, c = np.asarray(baseline, float), np.asarray(candidate, float)
    if log_scale:
        if (b <= 0).any() or (c <= 0).any():
            raise ValueError("log-scale comparison needs positive values")
        b, c = np.log(b), np.log(c)
    n, m = b.size, c.size
    p = float(mannwhitneyu(c, b, alternative="two-sided", method="asymptotic").pvalue)
    root = math.sqrt(max(inflation, 1.0))
    if root > 1.0:  # the same test on the effective sample: its z shrinks by the root
        p = float(2 * norm.sf(float(norm.isf(p / 2)) / root))
    diffs = pairwise_differences(b, c)
    # Distribution-free CI (Lehmann): the C-th smallest and largest pairwise differences, with
    # C from the normal approximation of U's null distribution (ties ignored, conservative enough
    # for continuous latencies).
    z = float(norm.ppf(1 - (1 - confidence) / 2)) * root
    k = math.floor(n * m / 2 - z * math.sqrt(n * m * (n + m + 1) / 12))
    k = max(k, 0)
    frac_lo, frac_hi = k / (n * m), 1 - k / (n * m)
    shift, lo, hi = _order_statistics(diffs, (0.5, frac_lo, frac_hi))
    return ShiftTest(n, m, p, shift, lo, hi, log_scale)


def _order_statistics(x: NDArray[np.float64], qs: tuple[float, ...]) -> tuple[float, ...]:
    """``np.quantile(x, q)`` (linear; ``np.median`` for 0.5) for each q, from one partial sort
    instead of one per quantile (the pairwise differences are n·m values: three selections were
    most of the judge's time)."""
    n = x.size
    pos = [q * (n - 1) for q in qs]
    below = [math.floor(v) for v in pos]
    kth = sorted({i for f in below for i in (f, min(f + 1, n - 1))})
    part = np.partition(x, kth)
    out: list[float] = []
    for q, v, f in zip(qs, pos, below, strict=True):
        a, b = float(part[f]), float(part[min(f + 1, n - 1)])
        t = v - f
        if q == 0.5 and t == 0.5:  # np.median: the mean of the two middle values
            out.append((a + b) / 2)
        else:  # numpy's lerp, from the nearer end (a weight of 0 or 1 gives the order statistic exactly)
            out.append(a + (b - a) * t if t < 0.5 else b - (b - a) * (1 - t))
    return tuple(out)


def pairwise_differences(b: NDArray[np.float64], c: NDArray[np.float64]) -> NDArray[np.float64]:
    if b.size * c.size <= MAX_PAIRS:
        out: NDArray[np.float64] = (c[:, None] - b[None, :]).ravel()
        return out
    rng = np.random.default_rng(0)
    i = rng.integers(0, c.size, MAX_PAIRS)
    j = rng.integers(0, b.size, MAX_PAIRS)
    sub: NDArray[np.float64] = c[i] - b[j]
    return sub
