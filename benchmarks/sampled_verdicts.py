"""Sampled task checks: how often the paired pass-rate gate is wrong, and what repeats buy.

Simulated suites (no model: the statistics only). Each item has a difficulty p_i ~ U(0.2, 1);
a draw passes when its uniform number u < p_i, and both arms use the same u for draw r (common
random numbers, as the served models do with the same seed). The candidate loses each passing
draw with probability q (damage), so the true drop of the mean pass rate is q * mean(p). Every
suite is judged by the real gate (`sampled_accuracy_entry`, margin and confidence below) with
R draws per item and, side by side, with the same items answered once (R = 1, the 0/1 McNemar
gate). Printed per damage level: FAIL / PASS / INCONCLUSIVE shares; A/A false FAIL (q = 0) and
false PASS (true drop beyond the margin) are the errors.

At the margin (``--parts margin``): the one-sided damage design (the candidate never wins a draw)
with the true drop of the mean pass rate exactly at the margin: q = 0.15, so q * E[p] = 0.09, gated
against a 0.09 margin, on suites of 8, 20 and 60 items. Every PASS there is a false PASS;
``sampled_false_pass_margin`` is the worst size's rate with its 95% Wilson interval (goal: its upper
end at most 1 - confidence).

    .venv/bin/python benchmarks/sampled_verdicts.py [--suites 200] [--items 60] [--repeats 5]
        [--parts classic,margin] [--margin-suites 2000]
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


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    p = k / n
    mid, half = p + z * z / (2 * n), z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, (mid - half) / (1 + z * z / n)), min(1.0, (mid + half) / (1 + z * z / n))


def margin_part(suites: int, repeats: int, confidence: float) -> str:
    """False PASS at a true drop equal to the margin, the candidate never winning a draw."""
    q, margin = 0.15, 0.09
    cfg = GatesSection(accuracy_drop_max=margin, confidence=confidence)
    rng = np.random.default_rng(1)
    print(
        f"\nat the margin: q={q} (true drop {q * 0.6:.2f}), margin {margin}, {repeats} draws, {suites} suites per size"
    )
    worst = (-1.0, 0.0, 1.0, 0)
    for items in (8, 20, 60):
        passed = 0
        for _ in range(suites):
            base, cand, _ = one_suite(rng, items, repeats, q)
            (e,) = sampled_accuracy_entry("t", ACCURACY, base.tolist(), cand.tolist(), cfg, [0.7] * items)
            passed += e.status == "pass"
        lo, hi = wilson(passed, suites)
        print(f"  {items:>3} items: false PASS {passed / suites:.4f} [{lo:.4f}-{hi:.4f}]", flush=True)
        if (passed / suites, hi) > worst[:3:2]:
            worst = (passed / suites, lo, hi, items)
    return (
        f"sampled_false_pass_margin={worst[0]:.4f} sampled_false_pass_margin_high={worst[2]:.4f} "
        f"sampled_false_pass_margin_ci=[{worst[1]:.4f},{worst[2]:.4f}] "
        f"margin_worst_items={worst[3]} margin_suites={suites}"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--suites", type=int, default=200)
    ap.add_argument("--items", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--margin", type=float, default=0.05)
    ap.add_argument("--confidence", type=float, default=0.95)
    ap.add_argument("--parts", default="classic,margin")
    ap.add_argument("--margin-suites", type=int, default=2000)
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    start = time.perf_counter()
    keys = [classic_part(args)] if "classic" in parts else []
    if "margin" in parts:
        keys.append(margin_part(args.margin_suites, args.repeats, args.confidence))
    print(" ".join([*keys, f"seconds={time.perf_counter() - start:.1f}"]))


def classic_part(args: argparse.Namespace) -> str:
    cfg = GatesSection(accuracy_drop_max=args.margin, confidence=args.confidence)
    rng = np.random.default_rng(0)
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
    return (
        f"aa_false_fail_r{r}={rates[(0.0, r)]['fail']:.4f} aa_pass_r{r}={rates[(0.0, r)]['pass']:.4f} "
        f"aa_pass_r1={rates[(0.0, 1)]['pass']:.4f} "
        f"false_pass_r{r}={max(rates[(q, r)]['pass'] for q in beyond):.4f} "
        f"false_pass_r1={max(rates[(q, 1)]['pass'] for q in beyond):.4f}"
    )


if __name__ == "__main__":
    main()
