"""Sampled task checks: how often the paired pass-rate gate is wrong, and what repeats buy.

Simulated suites (no model: the statistics only). Each item has a difficulty p_i ~ U(0.2, 1);
a draw passes when its uniform number u < p_i, and both arms use the same u for draw r (common
random numbers, as the served models do with the same seed). The candidate loses each passing
draw with probability q (damage), so the true drop of the mean pass rate is q * mean(p). Every
suite is judged by the real gate (`sampled_accuracy_entry`, margin and confidence below) with
R draws per item and, side by side, with the same items answered once (R = 1, the 0/1 McNemar
gate). Printed per damage level: FAIL / PASS / INCONCLUSIVE shares; A/A false FAIL (q = 0) and
false PASS (true drop beyond the margin) are the errors.

    .venv/bin/python benchmarks/sampled_verdicts.py [--suites 200] [--items 60] [--repeats 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from gates.config.schema import GatesSection
from gates.judge.quality import ACCURACY, sampled_accuracy_entry

DAMAGE = (0.0, 0.05, 0.15, 0.3)


def one_suite(rng: np.random.Generator, items: int, repeats: int, q: float) -> tuple[np.ndarray, np.ndarray, float]:
    p = rng.uniform(0.2, 1.0, items)
    u = rng.random((items, repeats))
    base = u < p[:, None]
    cand = base & (rng.random((items, repeats)) >= q)
    return base, cand, float(p.mean()) * q


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--suites", type=int, default=200)
    ap.add_argument("--items", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--margin", type=float, default=0.05)
    ap.add_argument("--confidence", type=float, default=0.95)
    args = ap.parse_args()
    cfg = GatesSection(accuracy_drop_max=args.margin, confidence=args.confidence)
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    print(f"{args.items} items, margin {args.margin}, confidence {args.confidence}, {args.suites} suites per row")
    print(f"{'damage q':>9} {'true drop':>9} | {'R':>2} {'fail':>6} {'pass':>6} {'inconcl':>7}")
    rates: dict[tuple[float, int], dict[str, float]] = {}
    for q in DAMAGE:
        counts = {r: {"fail": 0, "pass": 0, "inconclusive": 0} for r in (args.repeats, 1)}
        drops = []
        for _ in range(args.suites):
            base, cand, true_drop = one_suite(rng, args.items, args.repeats, q)
            drops.append(true_drop)
            for r in (args.repeats, 1):
                b, c = base[:, :r].tolist(), cand[:, :r].tolist()
                (e,) = sampled_accuracy_entry("t", ACCURACY, b, c, cfg, [0.7] * args.items)
                counts[r][e.status] += 1
        for r, cnt in counts.items():
            share = {k: v / args.suites for k, v in cnt.items()}
            rates[(q, r)] = share
            print(
                f"{q:>9.2f} {np.mean(drops):>9.3f} | {r:>2} {share['fail']:>6.3f} {share['pass']:>6.3f} "
                f"{share['inconclusive']:>7.3f}"
            )
    r = args.repeats
    beyond = [q for q in DAMAGE if q * 0.6 > args.margin]  # mean difficulty 0.6
    print(
        f"aa_false_fail_r{r}={rates[(0.0, r)]['fail']:.4f} aa_pass_r{r}={rates[(0.0, r)]['pass']:.4f} "
        f"aa_pass_r1={rates[(0.0, 1)]['pass']:.4f} "
        f"false_pass_r{r}={max(rates[(q, r)]['pass'] for q in beyond):.4f} "
        f"false_pass_r1={max(rates[(q, 1)]['pass'] for q in beyond):.4f} seconds={time.perf_counter() - start:.1f}"
    )


if __name__ == "__main__":
    main()
