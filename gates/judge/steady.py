"""Steady state of a latency series: where the warm-up ends, and intervals that respect autocorrelation.

Requests of one load window are not independent: a queue that builds up makes neighbours slow
together, and a server that warms up (caches, JIT, a batch that fills) makes the first requests
unlike the rest. Two tools, both standard in simulation output analysis:

- **MSER-5** (White 1997; Franklin & White 2008): batch the series into means of 5, and cut the
  ``d`` first batches that minimise the marginal standard error
  ``Σ_{i>d} (Y_i − Ȳ_d)² / (n − d)²``, searching ``d`` over the first half only (a cut past the
  half says the series never settled: then nothing is cut and ``settled`` is False).
- the **moving-block bootstrap** (Künsch 1989): resample blocks of ``⌈n^(1/3)⌉`` consecutive
  requests, so the dependence within a block survives the resampling and an interval of a
  percentile is not falsely narrow; and the **effective sample size** ``n / (1 + 2 Σ ρ_k)`` (lags
  summed until the first non-positive autocorrelation), which says how many independent requests
  the series is worth.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.stats import chi2, rankdata

BATCH = 5


@dataclasses.dataclass(frozen=True)
class Truncation:
    cut: int  # observations dropped from the start
    settled: bool  # False: the minimum fell in the second half (no steady state found); nothing is cut


def mser5(series: Sequence[float] | NDArray[Any]) -> Truncation:
    """The warm-up of ``series`` (in arrival order) by MSER-5."""
    x = np.asarray(series, dtype=float)
    k = x.size // BATCH
    if k < 4:
        return Truncation(0, True)  # too short to tell: nothing cut
    y = x[: k * BATCH].reshape(k, BATCH).mean(axis=1)
    # the statistic for every cut d at once, from suffix sums: Σ(Y − Ȳ_d)² = Σ Y² − (Σ Y)² / (k − d)
    s1, s2 = np.cumsum(y[::-1])[::-1], np.cumsum((y * y)[::-1])[::-1]
    rest = np.arange(k, 0, -1, dtype=float)
    stat = np.maximum(s2 - s1 * s1 / rest, 0.0) / (rest * rest)
    best_d = int(np.argmin(stat[: k - 1]))
    if best_d > k // 2:
        return Truncation(0, False)
    return Truncation(best_d * BATCH, True)


CUT_Z = 3.0  # a warm-up is cut only when its requests differ from the rest beyond this z


def warmup_cut(x: NDArray[Any]) -> int:
    """MSER-5's cut of the ranks of ``x``, kept only when the cut requests' mean rank differs from
    the series' by more than ``CUT_Z`` standard errors (sampling without replacement from ranks
    1..n). MSER-5 alone cut a few requests from ~40% of independent series, each time the chance
    run it removed biasing the rest: the early PASS of an effect at the limit rose 3.3% → 4.7%."""
    n = x.size
    r = rankdata(x)
    cut = mser5(r).cut
    if cut == 0 or cut >= n:
        return 0
    var = (n * n - 1) / 12.0 * (n - cut) / (cut * (n - 1))
    z = (float(r[:cut].mean()) - (n + 1) / 2.0) / math.sqrt(var)
    return cut if abs(z) > CUT_Z else 0


def steady_window(
    baseline: NDArray[np.float64], candidate: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64], int]:
    """Both arms from the later of their two warm-up ends: (baseline, candidate, requests cut per arm).

    MSER-5 runs on each arm's ranks (a slow outlier early on must not read as a warm-up; ranks
    keep the order and drop the scale) and its cut is kept only where it is a real change
    (:func:`warmup_cut`); the later end cuts both arms: the two arms of a paired load saw the same
    arrivals, so the window stays one window of time for both. A series that never settles
    (MSER's minimum in its second half) is cut nowhere.
    """
    cut = max((warmup_cut(x) for x in (baseline, candidate) if x.size), default=0)
    return baseline[cut:], candidate[cut:], cut


# Lags of the autocorrelation summed while each is significantly positive (one-sided, ~2.3%):
# on independent requests the sum then stays at 0 in ~98% of runs, so an iid series keeps its
# full power, where summing to the first negative lag inflated its variance ~10% on average.
LAG_Z = 2.0
BATCHES = 20  # batch means for a dependence too long and weak for single lags to show
BATCH_SIGNIFICANCE = 0.99  # batch inflation counted only beyond its chi-square 99th percentile


def variance_inflation(series: Sequence[float] | NDArray[Any]) -> float:
    """``n · Var(mean) / Var(x)`` of a series in arrival order: 1 for independent values, about
    ``(1 + φ)/(1 − φ)`` for an AR(1) of lag-1 correlation φ (the integrated autocorrelation time).

    ``1 + 2 Σ ρ_k`` over the lags whose autocorrelation exceeds ``LAG_Z / √n``, or the batch-means
    estimate (``BATCHES`` batches) where that is significantly above 1 and larger (a slow drift
    whose single lags are each too small to show); never below 1.
    """
    x = np.asarray(series, dtype=float)
    n = x.size
    if n < 4 * BATCHES or float(x.std()) == 0.0:
        return 1.0
    z = x - x.mean()
    size = 1 << (2 * n - 1).bit_length()
    spec = np.fft.rfft(z, size)
    acov = np.fft.irfft(spec * np.conj(spec), size)[: n // 2]
    rho = acov[1:] / acov[0]
    low = np.nonzero(rho <= LAG_Z / math.sqrt(n))[0]
    lags = int(low[0]) if low.size else rho.size
    tau = 1.0 + 2.0 * float(rho[:lags].sum())
    m = n // BATCHES
    means = x[: m * BATCHES].reshape(BATCHES, m).mean(axis=1)
    batch = float(means.var(ddof=1)) * m / float(x.var(ddof=1))
    if batch > chi2.ppf(BATCH_SIGNIFICANCE, BATCHES - 1) / (BATCHES - 1):
        tau = max(tau, batch)
    return max(tau, 1.0)


def combined_inflation(tau_b: float, n: int, tau_c: float, m: int) -> float:
    """Variance inflation of a two-sample rank statistic from the arms' own (``τ_b`` over ``n``
    requests, ``τ_c`` over ``m``): a rank sum's variance is ``(τ_c/m + τ_b/n)/12`` per pair against
    ``(1/m + 1/n)/12`` for independent requests.

    The arms are taken as independent of each other. A paired load shares its arrivals, so a
    burst slows both arms together; that common part cancels in the comparison, and ignoring it
    errs on the safe side (a wider interval, never a narrower one)."""
    if n < 1 or m < 1:
        return 1.0
    return (tau_c / m + tau_b / n) / (1.0 / m + 1.0 / n)


def rank_inflation(baseline: NDArray[Any], candidate: NDArray[Any]) -> float:
    """:func:`combined_inflation` of the Mann-Whitney statistic, each arm's measured on its pooled
    ranks in arrival order."""
    n = baseline.size
    ranks = rankdata(np.concatenate([baseline, candidate]))
    return combined_inflation(variance_inflation(ranks[:n]), n, variance_inflation(ranks[n:]), candidate.size)


def block_length(n: int, ess: float | None = None) -> int:
    """``⌈n^(1/3)⌉``, or twice the integrated autocorrelation time ``n / ess`` when that is longer
    (a block must hold the dependence it is meant to keep), at most a quarter of the series."""
    b: float = float(n) ** (1 / 3)
    if ess is not None and ess > 0:
        b = max(b, 2.0 * n / ess)
    return max(1, min(math.ceil(b), max(1, n // 3)))


def block_resample(
    x: NDArray[Any], replicates: int, rng: np.random.Generator, block: int | None = None
) -> NDArray[Any]:
    """``replicates`` moving-block bootstrap resamples of ``x`` (rows), each of ``len(x)``."""
    n = x.size
    b = block or block_length(n, effective_size(x))
    starts = rng.integers(0, n - b + 1, size=(replicates, math.ceil(n / b)))
    idx = (starts[:, :, None] + np.arange(b)[None, None, :]).reshape(replicates, -1)[:, :n]
    return np.asarray(x[idx])


def effective_size(series: Sequence[float] | NDArray[Any]) -> float:
    """``n / (1 + 2 Σ ρ_k)``: the independent samples the series is worth (n when uncorrelated);
    the larger of the autocorrelation sum and a batch-means estimate (10 batches) of the variance
    inflation is taken, as the sum alone misses dependence longer than its first negative lag."""
    x = np.asarray(series, dtype=float)
    n = x.size
    if n < 3 or float(x.std()) == 0.0:
        return float(n)
    inflation = 1.0
    if n >= 50:
        m = n // 10
        means = x[: m * 10].reshape(10, m).mean(axis=1)
        inflation = float(means.var(ddof=1)) * m / float(x.var())
    z = x - x.mean()
    var = float(z @ z) / n
    total = 0.0
    for k in range(1, n // 2):
        rho = float(z[:-k] @ z[k:]) / n / var
        if rho <= 0:
            break
        total += rho
    return n / max(1 + 2 * total, inflation, 1.0)
