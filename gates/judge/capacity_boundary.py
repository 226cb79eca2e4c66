"""Where an arm's probes turn from passing to failing, and the boundary interpolated there: from
each probe's rate and p95 alone (gates/judge/capacity_search.py reads the probes, bootstraps them
and fits the local lines)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def split(passed: Sequence[bool]) -> int:
    """The index of the first probe (rates increasing) read as failing, where the fewest probes
    disagree (the lowest such), ``len`` if none: the first failure where all agree. Read at the
    first failure, one unlucky window below passing ones settled a bracket 40% under the truth
    (simulated, a slowdown common to a window, a p95 that rises little near the limit)."""
    fails_below, best, best_k = 0, sum(passed), 0  # k = 0: every probe read as failing
    for k, ok in enumerate(passed, start=1):
        fails_below += not ok
        wrong = fails_below + sum(passed[k:])
        if wrong < best:
            best, best_k = wrong, k
    return best_k


def _crossing(lo_rate: float, lo_p: float, hi_rate: float, hi_p: float, limit: float) -> float:
    """Where 1/p95 reaches 1/limit between the two probes (linear in the rate)."""
    a, b, target = 1 / lo_p, 1 / hi_p, 1 / limit
    if not math.isfinite(a) or a == b:
        return lo_rate
    frac = min(max((a - target) / (a - b), 0.0), 1.0)
    return lo_rate + frac * (hi_rate - lo_rate)


def boundary_of(rates: Sequence[float], p95s: Sequence[float], limit: float) -> float:
    """The boundary from each probe's p95 (rates increasing), between the probes :func:`split`
    reads as the last passing and the first failing: inf past the last, 0 below the first."""
    k = split([v <= limit for v in p95s])
    if k == len(p95s):
        return math.inf
    if k == 0:
        return 0.0
    return _crossing(rates[k - 1], p95s[k - 1], rates[k], p95s[k], limit)
