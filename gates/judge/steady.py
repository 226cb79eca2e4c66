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
    best, best_d = math.inf, 0
    for d in range(k - 1):
        rest = y[d:]
        stat = float(((rest - rest.mean()) ** 2).sum()) / (rest.size**2)
        if stat < best:
            best, best_d = stat, d
    if best_d > k // 2:
        return Truncation(0, False)
    return Truncation(best_d * BATCH, True)


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
