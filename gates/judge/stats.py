"""Uncertainty for load metrics: bootstrap intervals over per-request samples."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def percentile_ratio_ci(
    baseline: Sequence[float],
    candidate: Sequence[float],
    q: float = 95.0,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Observed candidate/baseline ratio of the q-th percentile and its bootstrap CI.

    Both arms are resampled independently (they are separate request streams in one window).
    Seeded, so the same samples always give the same interval and the same verdict.
    """
    b = np.asarray(baseline, dtype=float)
    c = np.asarray(candidate, dtype=float)
    if b.size == 0 or c.size == 0 or not np.isfinite(b).all() or not np.isfinite(c).all():
        return math.nan, math.nan, math.nan
    observed = float(np.percentile(c, q) / np.percentile(b, q))
    rng = np.random.default_rng(seed)
    bi = rng.integers(0, b.size, size=(resamples, b.size))
    ci = rng.integers(0, c.size, size=(resamples, c.size))
    ratios = np.percentile(c[ci], q, axis=1) / np.percentile(b[bi], q, axis=1)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(ratios, [alpha, 1 - alpha])
    return observed, float(lo), float(hi)
