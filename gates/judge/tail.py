"""The tail itself: upper quantiles of the two arms compared with an order-statistic interval.

Mann-Whitney and Hodges-Lehmann see a shift of the whole distribution. A candidate whose median
stays put while its slow requests get slower (a wider spread, a longer tail: kayenta #780) moves
them little. This compares the q-th quantile of each arm directly, on the log scale (a ratio):

- estimate: the sample quantile ``X_(m)``, ``m = ⌊q·n + ½⌋``, of each arm's log latencies;
- standard error: Maritz-Jarrett (1978), the spread of ``X_(m)`` under the Beta(m−1, n−m) weights
  of the order statistics; distribution-free, it follows a heavy tail where a normal formula does
  not, and it is deterministic (no resampling);
- the log ratio of the two arms' quantiles is then approximately normal with the sum of the squared
  standard errors (independent arms), giving an interval (used to certify PASS: within the limit);
- significance ("the candidate's tail is higher"): the quantile ratio's own z is weak where the
  density is thin (a Pareto tail), so the test is a linear rank test on the pooled sample with
  upper-half Klotz scores ``a(u) = max(Φ⁻¹(u), 0)²`` (:func:`upper_tail_z`): zero below the pooled
  median, growing into the tail, the locally most powerful rank score for a wider spread of the
  upper half (Klotz 1962, restricted to it). Its mean and variance are the exact permutation
  moments, so under "same distribution" its z is standard normal whatever the latency shape, and,
  being a linear rank statistic, its values at successive looks follow the canonical joint
  distribution the group-sequential boundaries assume.

A quantile needs data beyond it: with fewer than ``2 / (1 − q)`` samples in an arm (40 for the p95,
200 for the p99) it is not estimated. Pure functions, no I/O.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from numpy.typing import NDArray
from scipy.special import betainc
from scipy.stats import binom, norm

from gates.judge.steady import combined_inflation, variance_inflation


@dataclasses.dataclass(frozen=True)
class QuantileTest:
    q: float  # 0.95, 0.99
    n_baseline: int
    n_candidate: int
    log_ratio: float  # log(candidate quantile / baseline quantile)
    se: float  # standard error of log_ratio (Maritz-Jarrett, both arms)
    z: float  # upper-tail rank test (positive: the candidate's tail is higher), see upper_tail_z

    @property
    def ratio(self) -> float:
        return math.exp(self.log_ratio)

    def bounds(self, z: float) -> tuple[float, float]:
        """Ratio interval ``exp(log_ratio ± z·se)``."""
        return math.exp(self.log_ratio - z * self.se), math.exp(self.log_ratio + z * self.se)


def min_samples(q: float) -> int:
    return math.ceil(2.0 / (1.0 - q) - 1e-9)


def maritz_jarrett(sorted_values: NDArray[np.float64], q: float) -> tuple[float, float]:
    """(X_(m), its Maritz-Jarrett standard error) for sorted values."""
    n = sorted_values.size
    m = min(max(math.floor(q * n + 0.5), 2), n - 1)
    edges = np.arange(n + 1) / n
    w = np.diff(betainc(m - 1, n - m, edges))
    c1 = float(np.dot(w, sorted_values))
    c2 = float(np.dot(w, sorted_values**2))
    return float(sorted_values[m - 1]), math.sqrt(max(c2 - c1 * c1, 0.0))


def quantile_interval(values: NDArray[np.float64], q: float, confidence: float) -> tuple[float, float]:
    """Exact distribution-free two-sided interval ``[X_(l), X_(u)]`` of the q-th quantile at ``confidence``.

    The number of values below the true quantile is Binomial(n, q) whatever the distribution, so
    ``P(X_(l) > ξ_q) = P(B ≤ l − 1)`` and ``P(X_(u) < ξ_q) = P(B ≥ u)``: each is kept at most
    (1 − confidence)/2 (conservative by the binomial's discreteness). Where no order statistic is
    far enough out (``q^n > (1 − confidence)/2`` for the upper end: fewer than 72 values for the p95
    at 95%, 104 at 99%) that end is infinite: so few values cannot bound the quantile. The
    percentile bootstrap can never exceed the sample maximum and missed the p95 15-30% of the time
    at 30-60 values for a nominal 2.5% per side.
    """
    x = np.sort(values[np.isfinite(values)])
    n = int(x.size)
    if n == 0:
        return math.nan, math.nan
    tail = (1 - confidence) / 2
    counts = np.arange(n + 1)
    cdf = binom.cdf(counts, n, q)  # cdf[k] = P(B <= k)
    # lower: the largest l with P(B <= l - 1) <= tail (l = 0: none)
    ok_low = np.nonzero(cdf[:-1] <= tail)[0]
    low = float(x[ok_low[-1]]) if ok_low.size else -math.inf  # l - 1 = k -> X_(l) = x[k]
    # upper: the smallest u with P(B >= u) = 1 - P(B <= u - 1) <= tail
    ok_high = np.nonzero(1 - cdf[:-1] <= tail)[0]
    high = float(x[ok_high[0]]) if ok_high.size else math.inf  # u - 1 = k -> X_(u) = x[k]
    return low, high


def upper_tail_scores(n: int) -> NDArray[np.float64]:
    """Upper-half Klotz scores of ranks 1..n: ``max(Φ⁻¹(r / (n + 1)), 0)²``."""
    return np.asarray(np.maximum(norm.ppf(np.arange(1, n + 1) / (n + 1)), 0.0) ** 2, dtype=float)


def pooled_scores(baseline: NDArray[np.float64], candidate: NDArray[np.float64]) -> NDArray[np.float64]:
    """Upper-half Klotz score of every value of the pooled sample, the candidate's first, each arm
    in its own order (mid-ranks for ties: tied values share the mean score of the ranks they span)."""
    pooled = np.concatenate([np.asarray(candidate, dtype=float), np.asarray(baseline, dtype=float)])
    _, group, counts = np.unique(pooled, return_inverse=True, return_counts=True)
    sorted_scores = upper_tail_scores(pooled.size)
    per_group = np.bincount(group[np.argsort(pooled, kind="stable")], weights=sorted_scores) / counts
    return np.asarray(per_group[group], dtype=float)


def upper_tail_z(baseline: NDArray[np.float64], candidate: NDArray[np.float64]) -> float:
    """Linear rank statistic of the candidate with upper-half Klotz scores, standardised by its exact
    permutation mean and variance (mid-ranks for ties, their scores averaged); 0 when degenerate."""
    m = int(np.asarray(candidate).size)
    n = int(np.asarray(baseline).size)
    total = n + m
    if m < 1 or n < 1:
        return 0.0
    a = pooled_scores(baseline, candidate)
    mean = float(a.mean())
    var = m * n / (total * (total - 1)) * float(np.sum((a - mean) ** 2))
    # every value tied (one group): the variance is 0, but a - mean keeps a rounding residue
    # (~1e-30) that made z = +36 for two identical constant arms; treat a variance that is
    # rounding-sized against the scores' own size as 0
    tiny = 1e-12 * m * n / (total * (total - 1)) * float(np.sum(a * a))
    if np.unique(np.concatenate([baseline, candidate])).size < 2 or var <= tiny:
        return 0.0
    return (float(a[:m].sum()) - m * mean) / math.sqrt(var)


def quantile_test(baseline: NDArray[np.float64], candidate: NDArray[np.float64], q: float) -> QuantileTest | None:
    """The q-th quantile of candidate vs baseline (positive, finite values, each arm in arrival
    order); None with too few samples.

    Requests in correlated runs are worth fewer independent ones: the rank z is divided by the
    root of the two arms' variance inflation on their score series (steady.combined_inflation)
    and each arm's Maritz-Jarrett error multiplied by the root of its own (1 for independent
    requests)."""
    lb, lc = np.log(np.asarray(baseline, dtype=float)), np.log(np.asarray(candidate, dtype=float))
    need = min_samples(q)
    if lb.size < need or lc.size < need:
        return None
    b, c = np.sort(lb), np.sort(lc)
    qb, se_b = maritz_jarrett(b, q)
    qc, se_c = maritz_jarrett(c, q)
    scores = pooled_scores(lb, lc)
    sc, sb = scores[: lc.size], scores[lc.size :]
    tb, tc = variance_inflation(sb), variance_inflation(sc)
    z = upper_tail_z(b, c) / math.sqrt(combined_inflation(tb, b.size, tc, c.size))
    se = math.hypot(se_b * math.sqrt(tb), se_c * math.sqrt(tc))
    return QuantileTest(q, int(b.size), int(c.size), qc - qb, se, z)


def one_sided_p(z: float) -> float:
    return float(norm.sf(z))


@dataclasses.dataclass(frozen=True)
class TailJudgement:
    status: str  # pass | fail | undecided | no_data
    observed: float | None  # candidate / baseline quantile ratio
    interval: tuple[float, float] | None
    p_value: float | None  # one-sided, "the candidate's quantile is higher"
    reason: str


def judge_quantile(
    baseline: NDArray[np.float64],
    candidate: NDArray[np.float64],
    q: float,
    limit: float,
    confidence: float,
    alpha: float,
    sequential: tuple[float, float] | None = None,
) -> TailJudgement:
    """One tail quantile against its ratio limit.

    FAIL: the candidate's tail is significantly higher (the upper-tail rank test, one-sided at
    ``alpha``, the gate's share of the family's error) *and* the quantile ratio exceeds the limit,
    the same two conditions as the shift gate. PASS: the interval (two-sided,
    ``1 − 2(1 − confidence)``) lies within the limit. Otherwise undecided. ``sequential``:
    (stage-wise p, z boundary) at the final look of an adaptive load, replacing the fixed p and
    critical value.
    """
    name = f"p{round(q * 100)}"
    test = quantile_test(baseline, candidate, q)
    if test is None:
        need = min_samples(q)
        return TailJudgement(
            "no_data", None, None, None, f"{name} needs {need} samples per arm (have {baseline.size}, {candidate.size})"
        )
    z_ci = float(norm.ppf(confidence))
    lo, hi = test.bounds(z_ci)
    level = f"{1 - 2 * (1 - confidence):.0%} CI {lo:.2f}–{hi:.2f}"
    if sequential is None:
        p, crit = one_sided_p(test.z), float(norm.isf(alpha))
        how = f"z={test.z:.2f}, p={p:.2g}"
    else:
        p, crit = sequential
        how = f"z={test.z:.2f} vs sequential boundary {crit:.2f}, adjusted p={p:.2g}"
    what = f"{name} ratio {test.ratio:.2f} ({level}; Maritz-Jarrett; upper-tail rank test {how})"
    if test.z >= crit and test.ratio > limit:
        return TailJudgement("fail", test.ratio, (lo, hi), p, f"{what}: higher, beyond {limit:.2f}")
    if hi <= limit:
        return TailJudgement("pass", test.ratio, (lo, hi), p, f"{what} within {limit:.2f}")
    return TailJudgement("undecided", test.ratio, (lo, hi), p, f"{what} straddles {limit:.2f}")
