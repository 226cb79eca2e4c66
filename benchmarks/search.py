"""Does `gates search` find the cheapest configuration that passes, without gating every one fully?

Simulated candidates with known truth go through the search's own stopping rule
(gates/search/halving.py, the rule `gates search` runs on real gate runs). Each trial draws a space
of --candidates configurations against one baseline:

- cost: log(candidate cost / baseline cost) uniform in [-0.8, 0.1] (INT4 to no gain), the truly
  cheapest non-inferior candidate at least --gap cheaper (log) than every other non-inferior one
  (the indifference zone of ranking and selection: closer than that, either is an answer);
- quality loss against the margin m: a third of the candidates clearly non-inferior (loss in
  [0, 0.3 m]), a third clearly inferior (loss in [2 m, 5 m]: INT4 at a coarse block), a third near
  the margin (loss in [1.0 m, 1.5 m]: just outside it, the case a false recommendation comes from);
- noise: a full measurement (the pipeline's whole load and quality set) estimates the loss with
  standard error --drop-se·m (0.15 m: the full load certifies a loss of 0.3 m) and the log cost
  with --cost-se; a rung measuring share τ has 1/τ times the variance, cumulative over the rungs
  (the same data, looked at again).

"Gating every candidate fully" measures every candidate at the full load once and recommends the
cheapest whose fixed non-inferiority test (at the same level) passes. Measurement time is counted in
full measurements (share of the load per candidate), so the ratio does not depend on the machine.

Printed: per-trial averages, then the last line
``search_found=<rate> search_false_recommend=<rate> search_time_ratio=<ratio>``:
found: the search recommended the truly cheapest non-inferior candidate; false_recommend: it
recommended one whose true loss is beyond the margin; time ratio: the search's measurement over
gating every candidate fully. Targets: found ≥ 0.95, false_recommend ≤ 0.05, ratio ≤ 0.50.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray
from scipy.stats import norm

from gates.search.halving import Observation, Rule, search

Truths = Callable[[np.random.Generator, int, float], tuple[NDArray[np.float64], NDArray[np.float64]]]


def worst(rng: np.random.Generator, k: int, gap: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The false recommendation's worst case: every candidate but one just beyond the margin and
    cheaper than the one good candidate (the rate then approaches its bound from below)."""
    drop = np.full(k, 1.0 + 1e-9)
    drop[0] = 0.0
    cost = rng.uniform(-0.8, -0.3, k)
    cost[0] = 0.0
    return cost, drop


def truths(rng: np.random.Generator, k: int, gap: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    while True:
        kind = rng.permutation(np.arange(k) % 3)  # 0: non-inferior, 1: inferior, 2: near the margin
        drop = np.where(
            kind == 0, rng.uniform(0, 0.3, k), np.where(kind == 1, rng.uniform(2, 5, k), rng.uniform(1.0, 1.5, k))
        )
        cost = rng.uniform(-0.8, 0.1, k)
        ok = np.sort(cost[drop <= 1.0])
        # loss in [1.0, 1.5] m is beyond the margin except at 1.0 exactly (probability 0)
        if ok.size and (ok.size == 1 or ok[1] - ok[0] >= gap):
            return cost, drop


def trial(
    draw: Truths, rng: np.random.Generator, k: int, rule: Rule, cost_se: float, gap: float, drop_se: float
) -> tuple[bool, bool, float]:
    cost, drop = draw(rng, k, gap)  # drop in units of the margin (m = 1)
    shares = (0.0, *rule.rungs)
    # Brownian sums: the estimate at share τ is truth + S(τ)/τ, S with variance σ²τ
    inc_c = rng.normal(0, 1, (k, len(rule.rungs))) * np.sqrt(np.diff(shares))
    inc_d = rng.normal(0, 1, (k, len(rule.rungs))) * np.sqrt(np.diff(shares))
    s_c, s_d = np.cumsum(inc_c, axis=1), np.cumsum(inc_d, axis=1)

    def measure(i: int, r: int) -> Observation:
        tau = rule.rungs[r]
        return Observation(
            cost=float(cost[i] + cost_se * s_c[i, r] / tau),
            cost_se=cost_se / math.sqrt(tau),
            drop=float(drop[i] + drop_se * s_d[i, r] / tau),
            drop_se=drop_se / math.sqrt(tau),
            margin=1.0,
        )

    out = search(k, rule, measure)
    ok = np.flatnonzero(drop <= 1.0)
    truth = int(ok[np.argmin(cost[ok])])
    rec = out.recommended
    return rec == truth, rec is not None and drop[rec] > 1.0, out.time_used / out.time_full


def full_gating(
    rng: np.random.Generator, k: int, rule: Rule, cost_se: float, gap: float, drop_se: float
) -> tuple[bool, bool]:
    """Every candidate at the full load once, the fixed non-inferiority test at the same level."""
    cost, drop = truths(rng, k, gap)
    est_c = cost + rng.normal(0, cost_se, k)
    est_d = drop + rng.normal(0, drop_se, k)
    z = (1.0 - est_d) / drop_se
    passed = np.flatnonzero(z >= norm.isf(rule.false_recommend / k))
    ok = np.flatnonzero(drop <= 1.0)
    truth = int(ok[np.argmin(cost[ok])])
    rec = int(passed[np.argmin(est_c[passed])]) if passed.size else None
    return rec == truth, rec is not None and drop[rec] > 1.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=2000)
    ap.add_argument("--candidates", type=int, default=12)
    ap.add_argument("--cost-se", type=float, default=0.03, help="standard error of the log cost at the full load")
    ap.add_argument(
        "--drop-se", type=float, default=0.15, help="standard error of the quality loss at the full load, in margins"
    )
    ap.add_argument("--gap", type=float, default=0.10, help="indifference zone of the cheapest (log cost)")
    ap.add_argument("--rungs", default="0.125,0.25,0.5,1", help="shares of the full load")
    ap.add_argument("--spending", default="pocock", choices=("pocock", "obrien_fleming"))
    ap.add_argument("--seed", type=int, default=20261205)
    a = ap.parse_args(argv)
    rule = Rule(rungs=tuple(float(x) for x in a.rungs.split(",")), spending=a.spending)
    rng = np.random.default_rng(a.seed)
    started = time.monotonic()
    found = false = 0
    ratio = 0.0
    for _ in range(a.trials):
        f, b, t = trial(truths, rng, a.candidates, rule, a.cost_se, a.gap, a.drop_se)
        found, false, ratio = found + f, false + b, ratio + t
    full_found = full_false = 0
    for _ in range(a.trials):
        f, b = full_gating(rng, a.candidates, rule, a.cost_se, a.gap, a.drop_se)
        full_found, full_false = full_found + f, full_false + b
    worst_false = sum(trial(worst, rng, a.candidates, rule, a.cost_se, a.gap, a.drop_se)[1] for _ in range(a.trials))
    n = a.trials
    print(
        f"{n} trials, {a.candidates} candidates, rungs {rule.rungs}, {rule.spending} spending, "
        f"false_recommend level {rule.false_recommend}, cost se {a.cost_se}, gap {a.gap} "
        f"({time.monotonic() - started:.1f}s)"
    )
    print(f"gating every candidate fully: found {full_found / n:.3f}, false recommend {full_false / n:.3f}, time 1.000")
    print(
        f"worst case (every other candidate just beyond the margin, all cheaper): false recommend "
        f"{worst_false / n:.3f} (bound {rule.false_recommend})"
    )
    print(f"search: found {found / n:.3f}, false recommend {false / n:.3f}, time {ratio / n:.3f} of full gating")
    print(f"search_found={found / n:.3f} search_false_recommend={false / n:.3f} search_time_ratio={ratio / n:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
