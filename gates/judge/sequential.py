"""Group-sequential boundaries with alpha spending (Lan-DeMets), for looks at a running load.

A load that is judged every few seconds and stops as soon as the verdict looks settled would, with
a fixed critical value, fail an A/A run far more often than the configured level: every look is
another chance for noise to cross. Error spending fixes that. A spending function ``α(τ)`` says
how much of the one-sided error ``α`` may have been used by the time fraction ``τ`` of the planned
maximum (``α(1) = α``); at look ``k`` the boundary ``c_k`` is the z value such that, under the null,
the chance of crossing first at ``k`` is ``α(τ_k) − α(τ_{k−1})``. The looks need not be planned:
their number and timing may follow the clock, as long as they do not depend on the data.

The joint null distribution of the z statistics at the looks is the canonical one (Jennison &
Turnbull, ch. 3): ``Z_k = S_k / √I_k`` with ``S`` a Brownian motion in information ``I``, so
``corr(Z_i, Z_j) = √(I_i / I_j)``. Rank statistics (Mann-Whitney) and sample quantiles follow it
asymptotically. The crossing probabilities are computed by recursive numerical integration of the
density of ``S_k`` over the continuation region on a grid (Armitage, McPherson & Rowe), which is
deterministic: the worker that decides when to stop and the judge that gives the verdict compute
the same boundaries from the same looks.

Pure functions, no I/O.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import brentq
from scipy.stats import norm

OBRIEN_FLEMING, POCOCK = "obrien_fleming", "pocock"
SPENDING = (OBRIEN_FLEMING, POCOCK)
_GRID = 401  # points of the density grid per look (odd, for Simpson's rule)
_SPAN = 8.0  # the grid reaches this many standard deviations below the mean


def spent(fraction: float, alpha: float, kind: str = OBRIEN_FLEMING) -> float:
    """One-sided error that may be spent by information/time fraction ``fraction`` (0..1).

    ``obrien_fleming``: ``2 − 2Φ(z_{1−α/2} / √τ)``, almost nothing early, nearly all of α at the
    end (the final boundary stays close to the fixed test's). ``pocock``: ``α·ln(1 + (e − 1)τ)``,
    spread evenly (early stops are easier, the final boundary is higher).
    """
    t = min(max(fraction, 0.0), 1.0)
    if t <= 0.0:
        return 0.0
    if kind == OBRIEN_FLEMING:
        return float(2.0 - 2.0 * norm.cdf(norm.ppf(1.0 - alpha / 2.0) / math.sqrt(t)))
    if kind == POCOCK:
        return float(alpha * math.log(1.0 + (math.e - 1.0) * t))
    raise ValueError(f"unknown spending function {kind!r} (one of {', '.join(SPENDING)})")


@dataclasses.dataclass(frozen=True)
class _Density:
    """Sub-density of ``S_k`` on the continuation region, as values on a grid with Simpson weights."""

    s: NDArray[np.float64]
    f: NDArray[np.float64]
    w: NDArray[np.float64]


def _simpson(lo: float, hi: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    s = np.linspace(lo, hi, _GRID)
    h = (hi - lo) / (_GRID - 1)
    w = np.full(_GRID, 2.0)
    w[1::2] = 4.0
    w[0] = w[-1] = 1.0
    return s, w * h / 3.0


def _cross(prev: _Density | None, info: float, delta: float, z: float) -> float:
    """P(still running before this look, and Z ≥ z at it)."""
    if prev is None:
        return float(norm.sf(z))
    mass = prev.f * prev.w
    return float(np.sum(mass * norm.sf((z * math.sqrt(info) - prev.s) / math.sqrt(delta))))


def _advance(prev: _Density | None, info: float, delta: float, z: float) -> _Density:
    # the continuation region: below the boundary (and above where no mass is left to speak of)
    lo, top = -_SPAN * math.sqrt(info), _SPAN * math.sqrt(info)
    hi = min(z * math.sqrt(info), top) if math.isfinite(z) else top
    s, w = _simpson(lo, max(hi, lo + 1e-9))
    if prev is None:
        f = norm.pdf(s / math.sqrt(info)) / math.sqrt(info)
    else:
        sd = math.sqrt(delta)
        u = (s[:, None] - prev.s[None, :]) / sd
        f = (np.exp(-0.5 * u * u) / (sd * math.sqrt(2.0 * math.pi))) @ (prev.f * prev.w)
    return _Density(s, np.asarray(f, dtype=float), w)


def _check(info: Sequence[float], fractions: Sequence[float]) -> None:
    if len(info) != len(fractions) or not info:
        raise ValueError("one information level and one fraction per look, at least one look")
    if any(b <= a for a, b in itertools.pairwise(info)) or info[0] <= 0:
        raise ValueError("information must be positive and grow from look to look")


def _solve(prev: _Density | None, info: float, delta: float, target: float) -> float:
    return float(brentq(lambda x: _cross(prev, info, delta, x) - target, -10.0, 40.0, xtol=1e-10))


@functools.lru_cache(maxsize=512)
def _boundaries(info: tuple[float, ...], fractions: tuple[float, ...], alpha: float, kind: str) -> tuple[float, ...]:
    _check(info, fractions)
    out: list[float] = []
    prev: _Density | None = None
    used = 0.0
    for k, (i_k, t_k) in enumerate(zip(info, fractions, strict=True)):
        target = spent(t_k, alpha, kind) - used
        delta = i_k - (info[k - 1] if k else 0.0)
        z = _solve(prev, i_k, delta, target) if target > 1e-15 else math.inf
        if math.isfinite(z):
            used += _cross(prev, i_k, delta, z)
        out.append(z)
        prev = _advance(prev, i_k, delta, z)
    return tuple(out)


def boundaries(
    info: Sequence[float], fractions: Sequence[float], alpha: float, kind: str = OBRIEN_FLEMING
) -> tuple[float, ...]:
    """Upper z boundaries ``c_1..c_K`` spending one-sided ``alpha`` at the given looks.

    ``info``: statistical information at each look (any unit; only ratios matter), increasing.
    ``fractions``: how far through the planned maximum each look is (spending time), non-decreasing;
    a look at fraction 1 spends all that is left. A look where nothing is left to spend gets ``inf``
    (cached: the same looks give the same tuple).
    """
    return _boundaries(tuple(map(float, info)), tuple(map(float, fractions)), float(alpha), kind)


def stagewise_p(
    z_last: float, info: Sequence[float], fractions: Sequence[float], alpha: float, kind: str = OBRIEN_FLEMING
) -> float:
    """One-sided p-value of a run that did not cross before its last look and had ``z_last`` there.

    Stage-wise ordering: the error spent at the earlier looks plus the null chance of reaching the
    last look and exceeding ``z_last`` there. It is ≤ ``spent(τ_K)`` exactly when ``z_last`` is at or
    above the last boundary, so "adjusted p < α" and "crossed the boundary" are the same decision.
    """
    _check(info, fractions)
    used, prev = _before_last(tuple(map(float, info)), tuple(map(float, fractions)), float(alpha), kind)
    delta = info[-1] - (info[-2] if len(info) > 1 else 0.0)
    return min(1.0, used + _cross(prev, info[-1], delta, z_last))


@functools.lru_cache(maxsize=256)
def _before_last(
    info: tuple[float, ...], fractions: tuple[float, ...], alpha: float, kind: str
) -> tuple[float, _Density | None]:
    """(error spent at the looks before the last, sub-density of S reaching the last look); cached."""
    bounds = boundaries(info[:-1], fractions[:-1], alpha, kind) if len(info) > 1 else ()
    prev: _Density | None = None
    used = 0.0
    for k, z in enumerate(bounds):
        delta = info[k] - (info[k - 1] if k else 0.0)
        used += _cross(prev, info[k], delta, z) if math.isfinite(z) else 0.0
        prev = _advance(prev, info[k], delta, z)
    return used, prev
