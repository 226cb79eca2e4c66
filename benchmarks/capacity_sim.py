"""Simulated servers with a known capacity at the SLO, for the coverage of the capacity search.

Each arm is an M/M/c queue: Poisson arrivals, ``c`` slots (a batching engine's concurrent
sequences), exponential service at ``mu`` per slot, first come first served, started empty as a
real server's window is. Its steady-state p95 sojourn time is known in closed form (Erlang C: the
wait is 0 with probability 1 − C, else exponential at ``c·mu − rate``, plus the service), so the
highest rate whose p95 meets a limit is known exactly (solved numerically): the truth the
interval must cover. Both arms see the same arrival times in every probe (paired, as gates sends
them); where the search gives the arms different rates, the slower arm gets a thinned share of the
same arrivals (a common uniform per arrival), as gates' open loop sends them.
"""

from __future__ import annotations

import heapq
import math

import numpy as np

from gates.judge.capacity_probes import Rates, run_search
from gates.judge.capacity_search import ArmProbe, Probe, SearchPlan, search_result


def erlang_c(c: int, load: float) -> float:
    """Probability that an arrival waits (``load`` = rate / mu, < c)."""
    term, total = 1.0, 1.0
    for k in range(1, c):
        term *= load / k
        total += term
    top = term * load / c / (1 - load / c)
    return top / (total + top)


def p95_sojourn(rate: float, mu: float, c: int) -> float:
    """Steady-state p95 of the time in system of M/M/c (inf at or past saturation)."""
    if rate >= c * mu:
        return math.inf
    wait = erlang_c(c, rate / mu)
    theta = c * mu - rate

    def tail(t: float) -> float:
        both = (
            (theta * math.exp(-mu * t) - mu * math.exp(-theta * t)) / (theta - mu)
            if theta != mu
            else (1 + mu * t) * math.exp(-mu * t)
        )
        return (1 - wait) * math.exp(-mu * t) + wait * both

    lo, hi = 0.0, 1.0
    while tail(hi) > 0.05:
        hi *= 2
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if tail(mid) > 0.05 else (lo, mid)
    return hi


def true_capacity(mu: float, c: int, limit_s: float) -> float:
    """The rate at which the steady-state p95 equals ``limit_s``."""
    lo, hi = 0.0, c * mu
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if p95_sojourn(mid, mu, c) <= limit_s else (lo, mid)
    return lo


def sojourn(arrivals: np.ndarray, service: np.ndarray, c: int) -> np.ndarray:
    """FIFO with ``c`` slots: each request's time in the system."""
    free = [0.0] * c  # when each slot is next free (a heap)
    out = np.empty_like(arrivals)
    for i, (a, s) in enumerate(zip(arrivals, service, strict=True)):
        start = max(a, heapq.heappop(free))
        heapq.heappush(free, start + s)
        out[i] = start + s - a
    return out


def simulated_probe(
    rates: Rates,
    mus: dict[str, float],
    c: int,
    duration_s: float,
    rng: np.random.Generator,
    warmup_s: float = 20.0,
    jitter: float = 0.0,
    offered: bool = True,
) -> Probe:
    """One paired window: arrivals from the start, the first ``warmup_s`` dropped (as load.warmup_s).

    ``jitter``: what a shared machine does to both arms at once — every latency of the window, in
    both arms, is scaled by one factor e^u, u ~ N(0, jitter²) (the median window is the model's, so
    the truth stands; the arms' window-to-window errors then correlate, as on the demo machine).
    ``offered``: each arm's probe knows how many requests arrived in the measured span (as gates'
    records do); False: only the nominal rate (the search as it was before 2026-12-05's last change)."""
    total = warmup_s + duration_s
    rate = max(rates.values())
    n = max(2, int(rng.poisson(rate * total)))
    arrivals = np.sort(rng.uniform(0, total, n))
    share = rng.uniform(0, 1, n)  # arrival i goes to an arm whose rate / the window's rate exceeds it
    # no draw without jitter: the seeds' earlier figures stay reproducible
    scale = math.exp(rng.normal(0.0, jitter)) if jitter > 0 else 1.0
    arms = {}
    for arm, mu in mus.items():
        mine = arrivals[share < rates[arm] / rate]
        w = scale * sojourn(mine, rng.exponential(1 / mu, mine.size), c)[mine >= warmup_s]
        arms[arm] = ArmProbe(tuple(float(v) for v in w), 0.0, w.size / duration_s if offered else None)
    return Probe.at(rates, arms)


def coverage(
    sims: int = 100,
    mus: tuple[float, float] = (1.0, 1.2),
    c: int = 8,
    limit_s: float = 4.0,
    duration_s: float = 90.0,
    seed: int = 0,
    max_probes: int = 12,
    per_arm: bool = True,
    halfwidth: float = 0.10,
    jitter: float = 0.0,
    offered: bool = True,
) -> dict[str, float]:
    """How often each arm's interval and the gain's cover the truth, and what the search cost; the
    gain's also as if the arms' errors were independent (``…_unpaired``), on the same probes."""
    rng = np.random.default_rng(seed)
    arms = {"baseline": mus[0], "candidate": mus[1]}
    truth = {a: true_capacity(m, c, limit_s) for a, m in arms.items()}
    true_gain = truth["candidate"] / truth["baseline"]
    hits = {"baseline": 0, "candidate": 0, "gain": 0, "gain_unpaired": 0}
    probes, halfwidths, unpaired, rhos, errors, ses = [], [], [], [], [], []
    for i in range(sims):
        plan = SearchPlan(
            limit=limit_s, error_rate_max=0.01, start=2.0, max_probes=max_probes, per_arm=per_arm, halfwidth=halfwidth
        )
        found = run_search(
            lambda r: simulated_probe(r, arms, c, duration_s, rng, jitter=jitter, offered=offered),
            plan,
            progress=lambda _: None,
        )
        res = search_result(found, plan, replicates=400, seed=i)
        alone = search_result(found, plan, replicates=400, seed=i, paired=False)
        for a in arms:
            b = getattr(res, a)
            hits[a] += b.low is not None and b.high is not None and b.low <= truth[a] <= b.high
        for key, r in (("gain", res), ("gain_unpaired", alone)):
            hits[key] += r.gain_low is not None and r.gain_high is not None and r.gain_low <= true_gain <= r.gain_high
        probes.append(res.probes_per_arm)
        halfwidths.append(res.gain_halfwidth if res.gain_halfwidth is not None else math.inf)
        unpaired.append(alone.gain_halfwidth if alone.gain_halfwidth is not None else math.inf)
        if res.arm_correlation is not None:
            rhos.append(res.arm_correlation)
        if res.gain and res.gain_log_se:
            # the error of log gain against the standard error its interval states
            errors.append(math.log(res.gain / true_gain))
            ses.append(res.gain_log_se)
    return {
        "capacity_coverage": min(hits["baseline"], hits["candidate"]) / sims,
        "baseline_coverage": hits["baseline"] / sims,
        "candidate_coverage": hits["candidate"] / sims,
        "gain_coverage": hits["gain"] / sims,
        "gain_coverage_unpaired": hits["gain_unpaired"] / sims,
        "true_baseline": truth["baseline"],
        "true_candidate": truth["candidate"],
        "true_gain": true_gain,
        "probes_per_arm_max": float(max(probes)),
        "gain_halfwidth_median": float(np.median(halfwidths)),
        "gain_halfwidth_median_unpaired": float(np.median(unpaired)),
        "arm_correlation_median": float(np.median(rhos)) if rhos else math.nan,
        # how much more the gains scatter around the truth than their intervals state: the spread of
        # each search's error over its own standard error (1: as stated), read robustly (1.4826 ×
        # the median absolute deviation), as a few searches' errors and intervals are very wide
        "gain_spread_ratio": _robust_sd(np.array(errors) / np.array(ses)) if len(ses) > 1 else math.nan,
    }


def _robust_sd(x: np.ndarray) -> float:
    return float(1.4826 * np.median(np.abs(x - np.median(x))))
