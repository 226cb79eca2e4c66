"""Latencies that are not independent: the ``steady`` part of benchmarks/verdict_quality.py.

Requests of one load window are not independent draws. A queue that builds up makes neighbours
slow together, and a server that warms up makes its first requests unlike the rest. Three A/A
sources, each arm drawn on its own (two servers, two queues), 1,000 requests per arm by default:

- ``AR(1) φ=0.7`` / ``AR(1) φ=0.9``: the simulated source's lognormal body (median 25 ms, σ 0.25)
  with its log following an AR(1) of lag-1 correlation φ (the variance of a mean is then
  (1 + φ)/(1 − φ) = 5.7× / 19× the independent one's), and the same 3% Pareto tail;
- ``warm-up``: the simulated source, independent, with each arm's first K requests slower
  (×2 at the first, falling linearly to ×1 at the K-th; K uniform in 50–300, drawn per arm).

``aa_false_fail_steady`` is the worst source's A/A FAIL rate with its 95% Wilson interval (goal:
at most 1 − confidence = 1%). The +20% rows (candidate ×1.2 on AR(1) φ=0.9) show what detection
the correlated data still support (no goal: 1,000 correlated requests are worth ~50 independent).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from gates.config.schema import GatesSection
from gates.judge.policy import FAIL, judge

Source = Callable[[np.random.Generator, int], np.ndarray]


def ar1_source(phi: float, sigma: float = 0.25) -> Source:
    def draw(rng: np.random.Generator, n: int) -> np.ndarray:
        e = rng.normal(0.0, sigma * np.sqrt(1 - phi * phi), n)
        e[0] = rng.normal(0.0, sigma)
        s = np.empty(n)
        s[0] = e[0]
        for i in range(1, n):
            s[i] = phi * s[i - 1] + e[i]
        x = 25.0 * np.exp(s)
        tail = rng.random(n) < 0.03
        x[tail] *= 1.5 + rng.pareto(2.5, tail.sum())
        return x

    return draw


def warmup_source(rng: np.random.Generator, n: int) -> np.ndarray:
    x = 25.0 * rng.lognormal(0.0, 0.25, n)
    tail = rng.random(n) < 0.03
    x[tail] *= 1.5 + rng.pareto(2.5, tail.sum())
    k = int(rng.integers(50, 301))
    x[:k] *= 2.0 - np.arange(k) / k
    return x


STEADY: dict[str, Source] = {
    "AR(1) φ=0.7": ar1_source(0.7),
    "AR(1) φ=0.9": ar1_source(0.9),
    "warm-up": warmup_source,
}


def steady_part(
    cfg: GatesSection,
    trials: int,
    n: int,
    seed: int,
    evidence: Callable[[np.ndarray, np.ndarray], object],
    rate: Callable[[int, int], str],
    wilson: Callable[[int, int], tuple[float, float]],
) -> str:
    rng = np.random.default_rng(seed)
    print(f"\ncorrelated and warming-up latencies, A/A, n={n} per arm, default gates, {trials} trials:")
    worst = (-1.0, (0.0, 1.0), "")
    for name, source in STEADY.items():
        fails = sum(judge(evidence(source(rng, n), source(rng, n)), cfg).verdict == FAIL for _ in range(trials))  # type: ignore[arg-type]
        print(f"  {name:14} FAIL {rate(fails, trials)}", flush=True)
        if (fails / trials, wilson(fails, trials)[1]) > (worst[0], worst[1][1]):
            worst = (fails / trials, wilson(fails, trials), name)
    ar = STEADY["AR(1) φ=0.9"]
    hits = sum(judge(evidence(ar(rng, n), ar(rng, n) * 1.2), cfg).verdict == FAIL for _ in range(trials))  # type: ignore[arg-type]
    print(f"  AR(1) φ=0.9 +20%: detected {rate(hits, trials)}", flush=True)
    point, (lo, hi), src = worst
    print(f"  worst: {src}")
    return (
        f"aa_false_fail_steady={point:.4f} aa_false_fail_steady_high={hi:.4f} "
        f"aa_false_fail_steady_ci=[{lo:.4f},{hi:.4f}] steady_detect_20pct={hits / trials:.4f} steady_trials={trials}"
    )
