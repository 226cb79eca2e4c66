"""Which rates the capacity search probes next (the statistics are in capacity_search.py).

Every probe is one window in which both arms get load. Two ways to spend a window:

- **one rate** (``SearchPlan.per_arm`` False): both arms at the same rate, every arrival sent to
  both. One search serves both arms, so near the end each window sits near one arm's boundary
  and far from the other's: the arm below its own boundary learns little, and the arm far past
  its own queues without bound, taking CPU from the other on a shared machine.
- **each arm its own rate** (``per_arm``): the window's arrivals come at the higher arm's rate and
  the slower arm gets a thinned share of the same arrivals (the same prompts, a common random
  subset: gates/loadgen/open_loop.py). Each arm's search runs in every window, so every window
  lands near both boundaries; with 12 windows each arm gets 12 probes of its own.

Per arm: bracket (double while passing, halve while failing), then bisect (geometric midpoint)
until the bracket is within ``tolerance``. After that, while ``SearchPlan.halfwidth`` asks for a
tighter gain and windows remain, the arm is probed below and above its current boundary estimate
in turn (``1 ∓ tolerance``, then ``1 ∓ 3·tolerance``): the fitted local line (capacity_search.py)
pools those probes, and its crossing tightens as about 1/√n.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from gates.judge.capacity_search import ARMS, Probe, SearchPlan, bracket, passes, search_result

Rates = dict[str, float]  # arm -> requests/s for the next window
SPREAD = (-1.0, 1.0, -3.0, 3.0)


def arm_want(probes: Sequence[Probe], arm: str, plan: SearchPlan) -> tuple[float, float] | None:
    """(how unsettled, the rate) this arm's search asks for next; None when its bracket has settled
    (within tolerance, or censored at the plan's rate limits)."""
    lo, hi = bracket(probes, arm, plan)
    rates = [p.rate_of(arm) for p in probes]
    if hi is None:
        top = max(rates)
        return (math.inf, min(top * 2, plan.max_rate)) if top < plan.max_rate else None
    if lo is None:
        bottom = min(rates)
        return (math.inf, max(bottom / 2, plan.min_rate)) if bottom > plan.min_rate else None
    ratio = hi.rate_of(arm) / lo.rate_of(arm)
    return (ratio, math.sqrt(lo.rate_of(arm) * hi.rate_of(arm))) if ratio > 1 + plan.tolerance else None


def _estimates(probes: Sequence[Probe], plan: SearchPlan) -> tuple[dict[str, float | None], float | None]:
    """Each arm's boundary estimate now, and the gain's half-width (a quick bootstrap: it only
    decides whether to go on): the wider of the unpaired one and the paired one the report states.
    Stopping the moment the paired error (which rests on a correlation estimated from a few
    windows) first looked small enough lost coverage — 0.83 under slowdowns common to both arms
    (``benchmarks/capacity.py --simulated 100 --sim-jitter 0.15``), 0.93 on the unpaired one; on
    the unpaired one alone, a search on the demo stopped at 7 probes and reported 0.102 for a
    target of 0.10 (a negative correlation, taken low, widens the paired one)."""
    res = search_result(probes, plan, confidence=plan.confidence, replicates=200)
    estimates = {"baseline": res.baseline.estimate, "candidate": res.candidate.estimate}
    paired, alone = res.gain_halfwidth, res.unpaired_halfwidth
    return estimates, (max(paired, alone) if paired is not None and alone is not None else None)


def _around(estimate: float | None, probes: Sequence[Probe], arm: str, plan: SearchPlan, turn: int) -> float:
    """Around the boundary, by ``turn``: × 1 − tolerance, 1 + tolerance, 1 − 3·tolerance,
    1 + 3·tolerance, again (the last rate if censored). The wider pair fixes the local line's
    slope: where an arm's p95 rises little near its limit, probes only ±tolerance apart left the
    slope to the windows' scatter (the demo's fp32 baseline: ±20% per window over a ±8% span, no
    rising line, the interval unbounded), and under slowdowns common to both arms the arms'
    intervals covered the truth 0.87 of the time against 0.95 with the wider pair (simulated)."""
    if estimate is None:
        return probes[-1].rate_of(arm)
    side = 1 + plan.tolerance * SPREAD[turn % len(SPREAD)]
    return min(max(estimate * side, plan.min_rate), plan.max_rate)


def next_rates(probes: Sequence[Probe], plan: SearchPlan) -> Rates | None:
    """The next window's rate per arm, or None: settled and precise enough, or the probes are spent."""
    if not probes:
        return dict.fromkeys(ARMS, plan.start)
    if len(probes) >= plan.max_probes:
        return None
    wants = {arm: arm_want(probes, arm, plan) for arm in ARMS}
    settled = all(w is None for w in wants.values())
    estimates: dict[str, float | None] = {}
    if settled or (plan.per_arm and any(w is None for w in wants.values())):
        estimates, halfwidth = _estimates(probes, plan)
        precise = plan.halfwidth <= 0 or (halfwidth is not None and halfwidth <= plan.halfwidth)
        censored = any(v is None for v in estimates.values())  # more probes cannot narrow an unbounded side
        if settled and (precise or censored):
            return None
    if plan.per_arm:
        return {
            arm: w[1] if w is not None else _around(estimates[arm], probes, arm, plan, len(probes))
            for arm, w in wants.items()
        }
    pending = [w for w in wants.values() if w is not None]
    if pending:
        return dict.fromkeys(ARMS, max(pending)[1])
    arm = ARMS[len(probes) % 2]  # one rate for both: refine each arm's boundary in turn
    return dict.fromkeys(ARMS, _around(estimates[arm], probes, arm, plan, len(probes) // 2))


def run_search(
    measure: Callable[[Rates], Probe], plan: SearchPlan, progress: Callable[[str], None] = print
) -> list[Probe]:
    """Probe until :func:`next_rates` says stop; ``measure(rates)`` runs one window at those rates."""
    probes: list[Probe] = []
    while (rates := next_rates(probes, plan)) is not None:
        probe = measure(rates)
        probes.append(probe)
        verdicts = ", ".join(
            f"{arm} {probe.rate_of(arm):.3g}/s {'pass' if passes(probe.arms[arm], plan) else 'fail'}" for arm in ARMS
        )
        progress(f"capacity probe {len(probes)}: {verdicts}")
    return probes
