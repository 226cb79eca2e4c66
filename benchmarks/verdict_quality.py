"""How often does the judge get latency wrong? A/A false-fail and planted-regression detection.

Latency samples come from two sources:
- *recorded*: the baseline arm of a real `make demo` run (benchmarks/data/), resampled with a
  little multiplicative jitter so that every trial is a fresh draw from a real noise shape;
- *simulated*: a lognormal body with a 3% Pareto tail (long tails, as loaded servers show).

For each trial both arms are drawn independently from the same distribution (A/A); a planted
regression multiplies the candidate's samples by 1+X, which raises its p95 by X. Each trial is
judged by the real judge (`gates.judge.policy.judge`, default gates and metrics, quality
perfect) and by a naive rule (FAIL when the observed p95 ratio exceeds 1.10, one run, no
statistics). Printed: false-fail rate on A/A (FAIL verdicts), detection rate (FAIL verdicts) for
5/10/20% regressions, and how often each was inconclusive.

    .venv/bin/python benchmarks/verdict_quality.py [--trials 300] [--n 500]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from gates.config.schema import GatesSection
from gates.judge.policy import FAIL, INCONCLUSIVE, Evidence, judge

DATA = Path(__file__).with_name("data") / "demo_baseline_latency_ms.json"


def recorded_source(rng: np.random.Generator, n: int) -> np.ndarray:
    base = np.asarray(json.loads(DATA.read_text())["latency_ms"], dtype=float)
    return base[rng.integers(0, base.size, n)] * rng.lognormal(0.0, 0.03, n)


def simulated_source(rng: np.random.Generator, n: int) -> np.ndarray:
    body = rng.lognormal(np.log(25.0), 0.25, n)
    tail = rng.random(n) < 0.03
    body[tail] *= 1.5 + rng.pareto(2.5, tail.sum())
    return body


def evidence(b: np.ndarray, c: np.ndarray) -> Evidence:
    tokens = 16.0
    return Evidence(
        series={
            "latency_ms": (tuple(b), tuple(c)),
            "output_tokens_per_s": (tuple(tokens / (b / 1000)), tuple(tokens / (c / 1000))),
        },
        baseline_error_rate=0.0,
        candidate_error_rate=0.0,
        candidate_requests=len(c),
        exact_match_rate=1.0,
        top1_agreement=1.0,
        mean_kl=0.0,
        golden_prompts=18,
        latency_simulated=False,
    )


def naive(b: np.ndarray, c: np.ndarray) -> str:
    return FAIL if np.percentile(c, 95) / np.percentile(b, 95) > 1.10 else "PASS"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=300)
    ap.add_argument("--n", type=int, default=500, help="successful requests per arm (the demo's measured window)")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    cfg = GatesSection()
    rng = np.random.default_rng(args.seed)
    started = time.monotonic()
    print(
        f"judge: default gates (confidence {cfg.confidence:.0%}, latency allowed +{cfg.metrics[0].allowed_effect:.0%}, "
        f"p95 ratio ≤ {cfg.latency_p95_ratio_max}); naive: observed p95 ratio > 1.10 → FAIL"
    )
    print(f"{args.trials} trials per row, n={args.n} requests per arm\n")
    header = f"{'source':10} {'planted':>8} | {'judge FAIL':>10} {'judge INCONC':>12} | {'naive FAIL':>10}"
    print(header)
    print("-" * len(header))
    results: dict[tuple[str, float], tuple[float, float, float]] = {}
    for name, source in (("recorded", recorded_source), ("simulated", simulated_source)):
        for planted in (0.0, 0.05, 0.10, 0.20):
            fails = inconc = naive_fails = 0
            for _ in range(args.trials):
                b, c = source(rng, args.n), source(rng, args.n) * (1 + planted)
                v = judge(evidence(b, c), cfg).verdict
                fails += v == FAIL
                inconc += v == INCONCLUSIVE
                naive_fails += naive(b, c) == FAIL
            row = (fails / args.trials, inconc / args.trials, naive_fails / args.trials)
            results[(name, planted)] = row
            label = "A/A" if planted == 0 else f"+{planted:.0%}"
            print(f"{name:10} {label:>8} | {row[0]:>10.1%} {row[1]:>12.1%} | {row[2]:>10.1%}")
    worst = lambda planted, i, agg: agg(results[(s, planted)][i] for s in ("recorded", "simulated"))  # noqa: E731
    print(f"\n({time.monotonic() - started:.0f}s)")
    print(
        f"aa_false_fail={worst(0.0, 0, max):.4f} aa_inconclusive={worst(0.0, 1, max):.4f} "
        f"detect_5pct={worst(0.05, 0, min):.4f} detect_10pct={worst(0.10, 0, min):.4f} "
        f"detect_20pct={worst(0.20, 0, min):.4f} naive_aa_false_fail={worst(0.0, 2, max):.4f} "
        f"naive_detect_10pct={worst(0.10, 2, min):.4f} n_per_arm={args.n} trials={args.trials}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
