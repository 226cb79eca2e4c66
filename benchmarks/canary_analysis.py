"""Canary analysis on simulated windows: false rollbacks of an identical canary, detection of regressions.

Each trial walks a whole promotion (``promotion.steps`` 10/25/50/100, ``failure_limit`` 2) the way
the state machine does with the analysis checker: at every step windows are analysed by the real
judge (``gates.promotion.analysis.judge.judge_step``, default ``gates:`` and default
``promotion.analysis:``) until PASS (next step), FAIL (counted; ``failure_limit`` consecutive FAILs
roll back, else the step's analysis starts again) or ``max_windows`` windows without a decision
(held: not promoted, not rolled back). A window holds ``--per-window`` requests per arm (default:
the synthetic load's 10 pairs/s × 30 s = 300), TTFT a fifth of each latency.

Both arms are drawn from the same source (benchmarks/verdict_quality.py's): *simulated* (a
lognormal body with a 3% Pareto tail) or *recorded* (the demo's baseline latencies resampled with
jitter). Cases: A/A (identical canary); ``p99_30pct`` (same median, p99 +30%: the upper half
stretched, verdict_quality.tail_only); ``latency_20pct`` (every request 20% slower).

Printed: per case and source, the rate of rollbacks (with its 95% Wilson interval), of holds,
and the mean number of windows to each step's decision; the last line is
``canary_aa_false_rollback=<rate> canary_detect_p99_30pct=<rate> canary_detect_latency_20pct=<rate>``
(worst source of each). Bounded time: ``--max-seconds`` stops adding trials (the count run is printed).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from verdict_quality import recorded_source, simulated_source, tail_only, wilson

from gates.config.analysis import AnalysisSection
from gates.config.promotion import PromotionSection
from gates.config.schema import GatesSection
from gates.promotion.analysis.judge import WindowStatus, judge_step
from gates.promotion.analysis.records import ArmSamples, WindowData

Source = Callable[[np.random.Generator, int], np.ndarray]


def arm(latencies: np.ndarray) -> ArmSamples:
    return ArmSamples(len(latencies), 0, len(latencies), tuple(latencies), tuple(latencies / 5.0))


def canary_draw(case: str, source: Source, rng: np.random.Generator, n: int) -> np.ndarray:
    if case == "p99_30pct":
        return tail_only(source, rng, n, 0.30)
    x = source(rng, n)
    return x * 1.20 if case == "latency_20pct" else x


def promotion(
    case: str, source: Source, rng: np.random.Generator, per_window: int, gates: GatesSection, cfg: PromotionSection
) -> tuple[str, list[int]]:
    """('promoted' | 'rolled_back' | 'held', windows used by each decision)."""
    analysis = cfg.analysis or AnalysisSection()
    decisions: list[int] = []
    failures = 0
    step = 0
    while step < len(cfg.steps):
        windows: list[WindowData] = []
        while True:
            w = WindowData(0, 1, arm(source(rng, per_window)), arm(canary_draw(case, source, rng, per_window)), "sim")
            windows.append(w)
            j = judge_step(windows, gates, analysis, explain_holds=False)
            if j.status != WindowStatus.NODATA:
                break
            if len(windows) >= analysis.max_windows:
                decisions.append(len(windows))
                return "held", decisions
        decisions.append(len(windows))
        if j.status == WindowStatus.FAIL:
            failures += 1
            if failures >= cfg.failure_limit:
                return "rolled_back", decisions
            continue
        failures = 0
        step += 1
    return "promoted", decisions


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=300, help="promotions per case and source")
    ap.add_argument("--per-window", type=int, default=300, help="requests per arm in one window")
    ap.add_argument("--max-seconds", type=float, default=1500.0, help="stop adding trials after this")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sources", default="simulated,recorded")
    ap.add_argument("--cases", default="aa,p99_30pct,latency_20pct", help="a subset prints no summary line")
    args = ap.parse_args()
    gates = GatesSection()
    cfg = PromotionSection(analysis=AnalysisSection())
    sources: dict[str, Source] = {"simulated": simulated_source, "recorded": recorded_source}
    cases = tuple(args.cases.split(","))
    budget = args.max_seconds / (len(cases) * len(args.sources.split(",")))
    print(
        f"defaults: {cfg.analysis}; steps {cfg.steps}, failure_limit {cfg.failure_limit}; {args.per_window}/arm/window"
    )
    print(f"{'case':<15}{'source':<11}{'trials':>7}  {'rolled back':<24}{'held':<22}{'windows/decision':>17}")
    worst: dict[str, float] = {}
    for case in cases:
        for name in args.sources.split(","):
            rng = np.random.default_rng(args.seed)
            outcomes: list[str] = []
            windows: list[int] = []
            t0 = time.monotonic()
            while len(outcomes) < args.trials and time.monotonic() - t0 < budget:
                outcome, used = promotion(case, sources[name], rng, args.per_window, gates, cfg)
                outcomes.append(outcome)
                windows += used
            n = len(outcomes)
            rb, held = outcomes.count("rolled_back"), outcomes.count("held")
            (lo, hi), (hlo, hhi) = wilson(rb, n), wilson(held, n)
            print(
                f"{case:<15}{name:<11}{n:>7}  {rb / n:6.1%} [{lo:.1%}–{hi:.1%}]{'':<4}"
                f"{held / n:6.1%} [{hlo:.1%}–{hhi:.1%}]  {np.mean(windows):>15.2f}"
            )
            rate = rb / n
            worst[case] = max(worst.get(case, 0.0), rate) if case == "aa" else min(worst.get(case, 1.0), rate)
    if set(worst) != {"aa", "p99_30pct", "latency_20pct"}:
        return 0
    print(
        f"canary_aa_false_rollback={worst['aa']:.4f} canary_detect_p99_30pct={worst['p99_30pct']:.4f} "
        f"canary_detect_latency_20pct={worst['latency_20pct']:.4f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
