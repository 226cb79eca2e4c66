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
5/10/20% regressions, and how often each was inconclusive. A +4% regression is *within* the
default allowed effect (5%): a FAIL there is an error of the point-estimate rule, printed for the
fixed and the adaptive design (`fixed_fail_4pct`, `adaptive_fail_4pct`, the worse source).

Adaptive against fixed, at equal error rates: the same trials judged (a) once at n requests per
arm (fixed) and (b) with adaptive stopping (gates/judge/adaptive.py): looks every --step requests
per arm from --first to n, stopping when `settle` says the decision is settled, then judged by the
real judge at that look with the looks recorded (the alpha-spent boundary). "Load time" here is
requests consumed per arm (at a fixed request rate, simulated seconds are proportional), so the
adaptive time ratio is mean(requests at stop) / n over the A/A and +10% trials of both sources.

Why n = 2000 by default: "equal error rates" includes the tail target. A fixed design of 500
requests per arm (the demo's window) detects the tail-only regression below on the simulated,
heavy-tailed source only ~60% of the time (its p95 rises 16% against the 1.10 limit, so even the
point estimate exceeds the limit in only ~85% of 500-request draws); it takes ~2000 per arm for
>= 90%. The fixed design is therefore the one that meets every target (2000), and adaptive stopping
has the same maximum: it stops early when the decision is settled (A/A, +10%) and goes on only
when it is not (a marginal tail), which is the time it saves. `--n 500` shows the smaller design.

Tail only: the candidate keeps the baseline's median and has a longer upper tail: above the
source's median m every value x becomes m·(x/m)^k, k chosen so that the p99 rises by 30% (the
p95 then rises less; the achieved median and p90/p95/p99 ratios are printed, measured on 200,000
draws). Judged by the full judge and by Mann-Whitney alone (the tail gates off).

Every rate is printed with its 95% Wilson interval over the trials, so the precision is visible.

Heavy tails (``--parts heavy``): A/A on lognormal sigma = 1 and 1.5 and Pareto alpha = 1.5 and 2.5
latencies (the shapes queueing and preemption give), 500 requests per arm, the full default metric
set: output tokens/s from a per-request token count (1-64) over the latency, so the two metrics are
not one. ``aa_false_fail_heavy`` is the worst source's FAIL rate (goal: the upper end of its Wilson
interval, ``aa_false_fail_heavy_high``, at most 1 − confidence = 1%). The verdict's bound is
(1 − confidence)/2 = 0.5% (stats.half_budget), so 5,000 trials per source are needed for the
interval's upper end to clear 1% (1,500 left it at 1.2% around a point of 0.7%).

Early PASS at the limit (``--parts limit``): a small plan (300 requests per arm, 20 looks of 15) on
the simulated source with the true effect exactly at a limit: the whole distribution ×1.05 (the
shift's allowance) for the shift test, and the upper half stretched so that the p95 rises ×1.10
(its limit) for the p95 test; each test alone, counting a PASS it settles before the last look.
``pass_error_at_limit`` is the worse of the two (goal: at most ``--pass-error``).

Correlated and warming-up latencies (``--parts steady``, benchmarks/verdict_steady.py): A/A on
AR(1) latencies and on arms that warm up, ``aa_false_fail_steady`` (goal: at most 1%).

    .venv/bin/python benchmarks/verdict_quality.py [--trials 200] [--n 2000] [--step 100] [--first 100]
        [--parts classic,heavy,limit,steady] [--heavy-trials 5000] [--limit-trials 1500]
        [--steady-trials 500] [--steady-n 1000]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from gates.config.schema import GatesSection
from gates.judge.adaptive import CONTINUE, PASS, Look, Plan, plan_for, settle, shift_look, tail_look
from gates.judge.policy import FAIL, INCONCLUSIVE, Evidence, judge

sys.path.insert(0, str(Path(__file__).parent))
from verdict_steady import steady_part

DATA = Path(__file__).with_name("data") / "demo_baseline_latency_ms.json"


def recorded_source(rng: np.random.Generator, n: int) -> np.ndarray:
    base = np.asarray(json.loads(DATA.read_text())["latency_ms"], dtype=float)
    return base[rng.integers(0, base.size, n)] * rng.lognormal(0.0, 0.03, n)


def simulated_source(rng: np.random.Generator, n: int) -> np.ndarray:
    body = rng.lognormal(np.log(25.0), 0.25, n)
    tail = rng.random(n) < 0.03
    body[tail] *= 1.5 + rng.pareto(2.5, tail.sum())
    return body


def evidence(b: np.ndarray, c: np.ndarray, looks: tuple[Look, ...] = ()) -> Evidence:
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
        looks=looks,
    )


def naive(b: np.ndarray, c: np.ndarray) -> str:
    return FAIL if np.percentile(c, 95) / np.percentile(b, 95) > 1.10 else "PASS"


def _stretch(source: object, p99_rise: float) -> tuple[float, float]:
    ref = source(np.random.default_rng(12345), 200_000)  # type: ignore[operator]
    m, q99 = np.percentile(ref, [50, 99])
    return float(m), float(1 + np.log1p(p99_rise) / np.log(q99 / m))


def tail_only(source: object, rng: np.random.Generator, n: int, p99_rise: float = 0.30) -> np.ndarray:
    """Same median, p99 raised by p99_rise: the upper half stretched on the log scale."""
    m, k = _stretch(source, p99_rise)
    x: np.ndarray = source(rng, n)  # type: ignore[operator]
    up = x > m
    x[up] = m * (x[up] / m) ** k
    return x


def planted_ratios(source: object) -> str:
    """The tail-only regression as achieved: candidate / baseline quantiles on 200,000 fresh draws."""
    b = source(np.random.default_rng(1), 200_000)  # type: ignore[operator]
    c = tail_only(source, np.random.default_rng(2), 200_000)
    qs = (50, 90, 95, 99)
    r = np.percentile(c, qs) / np.percentile(b, qs)
    return " ".join(f"p{q} ×{x:.3f}" for q, x in zip(qs, r, strict=True))


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a binomial rate k/n."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    mid, half = (p + z * z / (2 * n)), z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, (mid - half) / (1 + z * z / n)), min(1.0, (mid + half) / (1 + z * z / n))


def rate(k: int, n: int) -> str:
    lo, hi = wilson(k, n)
    return f"{k / n:6.1%} [{lo:.1%}–{hi:.1%}]"


def adaptive(
    b: np.ndarray, c: np.ndarray, cfg: GatesSection, n: int, first: int, step: int, pass_error: float
) -> tuple[str, int]:
    """(verdict, requests per arm consumed) with looks at first, first+step, ..., n."""
    plan = plan_for(cfg, pass_error)
    looks: list[Look] = []
    points = [*range(first, n, step), n]
    for k in points:
        looks.append(Look(k, k, k / n))
        if settle(b[:k], c[:k], looks, plan).status != CONTINUE:
            break
    used = looks[-1].n_baseline
    return judge(evidence(b[:used], c[:used], tuple(looks)), cfg).verdict, used


def lognormal_source(sigma: float) -> Callable[[np.random.Generator, int], np.ndarray]:
    return lambda rng, n: 25.0 * rng.lognormal(0.0, sigma, n)


def pareto_source(alpha: float) -> Callable[[np.random.Generator, int], np.ndarray]:
    return lambda rng, n: 25.0 * (1.0 + rng.pareto(alpha, n))


HEAVY = {
    "lognormal σ=1": lognormal_source(1.0),
    "lognormal σ=1.5": lognormal_source(1.5),
    "Pareto α=1.5": pareto_source(1.5),
    "Pareto α=2.5": pareto_source(2.5),
}


def heavy_evidence(rng: np.random.Generator, b: np.ndarray, c: np.ndarray) -> Evidence:
    """Latency and output tokens/s from a per-request token count: two metrics, not one."""
    tb, tc = rng.integers(1, 65, b.size), rng.integers(1, 65, c.size)
    ev = evidence(b, c)
    series = {
        "latency_ms": ev.series["latency_ms"],
        "output_tokens_per_s": (tuple(tb / (b / 1000)), tuple(tc / (c / 1000))),
    }
    return dataclasses.replace(ev, series=series)


def heavy_part(cfg: GatesSection, trials: int, n: int, seed: int) -> tuple[float, tuple[float, float], str]:
    rng = np.random.default_rng(seed)
    print(f"\nheavy tails, A/A, n={n} per arm, default gates and metrics (latency, output tokens/s), {trials} trials:")
    worst: tuple[float, tuple[float, float], str] = (-1.0, (0.0, 1.0), "")
    for name, source in HEAVY.items():
        fails = 0
        for _ in range(trials):
            fails += judge(heavy_evidence(rng, source(rng, n), source(rng, n)), cfg).verdict == FAIL
        print(f"  {name:16} FAIL {rate(fails, trials)}", flush=True)
        if fails / trials > worst[0] or (fails / trials == worst[0] and wilson(fails, trials)[1] > worst[1][1]):
            worst = (fails / trials, wilson(fails, trials), name)
    return worst


def p95_at_limit(rng: np.random.Generator, n: int, limit: float = 1.10) -> np.ndarray:
    """The simulated source with its upper half stretched so that its p95 is ×limit (median kept)."""
    m, q95 = np.percentile(simulated_source(np.random.default_rng(12345), 200_000), [50, 95])
    k = 1 + np.log(limit) / np.log(q95 / m)
    x = simulated_source(rng, n)
    up = x > m
    x[up] = m * (x[up] / m) ** k
    return x


def early_pass(test: str, b: np.ndarray, c: np.ndarray, plan: Plan, n: int, looks: int) -> bool:
    step = n // looks
    seen: list[Look] = []
    for k in range(step, n + 1, step):
        seen.append(Look(k, k, k / n))
        t = shift_look(b[:k], c[:k], seen, plan) if test == "shift" else tail_look(b[:k], c[:k], seen, plan, 0.95, 1.1)
        if t.status != CONTINUE:
            return t.status == PASS and k < n
    return False


def limit_part(cfg: GatesSection, trials: int, pass_error: float, seed: int) -> tuple[float, tuple[float, float]]:
    n, looks = 300, 20
    plan = plan_for(cfg, pass_error)
    rng = np.random.default_rng(seed)
    print(
        f"\nearly PASS at the limit, small plan: {n} per arm, {looks} looks, pass_error {pass_error}, {trials} trials:"
    )
    out: list[tuple[float, tuple[float, float]]] = []
    for test, make in (
        ("shift", lambda: (simulated_source(rng, n), simulated_source(rng, n) * 1.05)),
        ("p95", lambda: (simulated_source(rng, n), p95_at_limit(rng, n))),
    ):
        hits = sum(early_pass(test, *make(), plan, n, looks) for _ in range(trials))
        print(f"  {test:6} at its limit: early PASS {rate(hits, trials)}", flush=True)
        out.append((hits / trials, wilson(hits, trials)))
    return max(out, key=lambda x: (x[0], x[1][1]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument(
        "--n", type=int, default=2000, help="requests per arm of the fixed design = adaptive's maximum (see above)"
    )
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--first", type=int, default=100, help="adaptive: requests per arm at the first look")
    ap.add_argument("--step", type=int, default=100, help="adaptive: requests per arm between looks")
    ap.add_argument("--pass-error", type=float, default=0.05, help="adaptive: load.pass_error")
    ap.add_argument("--parts", default="classic,heavy,limit,steady", help="classic, heavy, limit, steady")
    ap.add_argument("--heavy-trials", type=int, default=5000)
    ap.add_argument("--planted", default="0,0.04,0.05,0.1,0.2", help="classic: the planted regressions (rows)")
    ap.add_argument("--limit-trials", type=int, default=1500)
    ap.add_argument("--steady-trials", type=int, default=500, help="steady: trials per source (verdict_steady.py)")
    ap.add_argument("--steady-n", type=int, default=1000, help="steady: requests per arm")
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    cfg = GatesSection()
    started = time.monotonic()
    keys: list[str] = []
    if "classic" in parts:
        keys.append(classic_part(args, cfg))
    if "heavy" in parts:
        point, (lo, hi), name = heavy_part(cfg, args.heavy_trials, 500, args.seed + 1)
        print(f"  worst: {name}")
        keys.append(
            f"aa_false_fail_heavy={point:.4f} aa_false_fail_heavy_high={hi:.4f} "
            f"aa_false_fail_heavy_ci=[{lo:.4f},{hi:.4f}] heavy_trials={args.heavy_trials}"
        )
    if "limit" in parts:
        point, (lo, hi) = limit_part(cfg, args.limit_trials, args.pass_error, args.seed + 2)
        keys.append(
            f"pass_error_at_limit={point:.4f} pass_error_at_limit_high={hi:.4f} "
            f"pass_error_at_limit_ci=[{lo:.4f},{hi:.4f}] limit_trials={args.limit_trials}"
        )
    if "steady" in parts:
        keys.append(steady_part(cfg, args.steady_trials, args.steady_n, args.seed + 3, evidence, rate, wilson))
    print(f"({time.monotonic() - started:.0f}s)")
    print(" ".join(keys))
    return 0


def classic_part(args: argparse.Namespace, cfg: GatesSection) -> str:
    """The recorded and simulated rows, the tail-only rows and the adaptive load time (module doc)."""
    mw_only = cfg.model_copy(update={"latency_p95_ratio_max": None, "latency_p99_ratio_max": None})
    rng = np.random.default_rng(args.seed)
    print(
        f"judge: default gates (confidence {cfg.confidence:.0%}, latency allowed +{cfg.metrics[0].allowed_effect:.0%}, "
        f"p95 ratio ≤ {cfg.latency_p95_ratio_max}); naive: observed p95 ratio > 1.10 → FAIL"
    )
    print(
        f"{args.trials} trials per row, n={args.n} requests per arm; adaptive: looks every {args.step} from "
        f"{args.first}, pass_error {args.pass_error}\n"
    )
    header = (
        f"{'source':10} {'planted':>8} | {'judge FAIL [95% CI]':>22} {'INCONC':>7} | {'naive FAIL':>10} | "
        f"{'adaptive FAIL [95% CI]':>22} {'INCONC':>7} {'mean n':>7}"
    )
    print(header)
    print("-" * len(header))
    t = args.trials
    results: dict[tuple[str, float], tuple[int, ...]] = {}
    used_by_row: dict[tuple[str, float], float] = {}
    for name, source in (("recorded", recorded_source), ("simulated", simulated_source)):
        for planted in (float(x) for x in args.planted.split(",")):
            fails = inconc = naive_fails = a_fails = a_inconc = used_total = 0
            for _ in range(t):
                b, c = source(rng, args.n), source(rng, args.n) * (1 + planted)
                v = judge(evidence(b, c), cfg).verdict
                fails += v == FAIL
                inconc += v == INCONCLUSIVE
                naive_fails += naive(b, c) == FAIL
                av, used = adaptive(b, c, cfg, args.n, args.first, args.step, args.pass_error)
                a_fails += av == FAIL
                a_inconc += av == INCONCLUSIVE
                used_total += used
            results[(name, planted)] = (fails, inconc, naive_fails, a_fails, a_inconc)
            used_by_row[(name, planted)] = used_total / t
            label = "A/A" if planted == 0 else f"+{planted:.0%}"
            print(
                f"{name:10} {label:>8} | {rate(fails, t):>22} {inconc / t:>7.1%} | {naive_fails / t:>10.1%} | "
                f"{rate(a_fails, t):>22} {a_inconc / t:>7.1%} {used_total / t:>7.0f}",
                flush=True,
            )
    print(f"\ntail only (same median, p99 +30%), n={args.n} per arm; the planted regression as achieved:")
    for name, source in (("recorded", recorded_source), ("simulated", simulated_source)):
        print(f"  {name:10} {planted_ratios(source)}")
    tail: dict[str, tuple[int, int, int]] = {}
    for name, source in (("recorded", recorded_source), ("simulated", simulated_source)):
        full = mw = ad = 0
        for _ in range(t):
            b, c = source(rng, args.n), tail_only(source, rng, args.n)
            full += judge(evidence(b, c), cfg).verdict == FAIL
            mw += judge(evidence(b, c), mw_only).verdict == FAIL
            ad += adaptive(b, c, cfg, args.n, args.first, args.step, args.pass_error)[0] == FAIL
        tail[name] = (full, mw, ad)
        print(
            f"{name:10} judge FAIL {rate(full, t)} | Mann-Whitney alone FAIL {rate(mw, t)} | "
            f"adaptive FAIL {rate(ad, t)}",
            flush=True,
        )

    def worst(planted: float, i: int, agg: Callable[[Iterable[int]], int]) -> float:
        if any((s, planted) not in results for s in ("recorded", "simulated")):
            return float("nan")  # a row left out with --planted
        return agg(results[(s, planted)][i] for s in ("recorded", "simulated")) / t

    aa = max(worst(0.0, 0, max), worst(0.0, 3, max))
    detect = min(worst(0.10, 0, min), worst(0.10, 3, min))
    # load time: requests consumed per arm, adaptive over fixed, A/A and +10% rows of both sources
    rows = [used_by_row[(s, p)] for s in ("recorded", "simulated") for p in (0.0, 0.10) if (s, p) in used_by_row]
    ratio = float(np.mean(rows)) / args.n if rows else float("nan")
    print(f"\nadaptive mean requests per arm / fixed {args.n}: {ratio:.3f} (A/A and +10%, both sources)")
    return (
        f"aa_false_fail={aa:.4f} detect_10pct={detect:.4f} adaptive_time_ratio={ratio:.4f} "
        f"tail_detect={min(x[0] for x in tail.values()) / t:.4f} "
        f"mw_tail_detect={max(x[1] for x in tail.values()) / t:.4f} "
        f"fixed_aa_false_fail={worst(0.0, 0, max):.4f} adaptive_aa_false_fail={worst(0.0, 3, max):.4f} "
        f"fixed_detect_10pct={worst(0.10, 0, min):.4f} adaptive_detect_10pct={worst(0.10, 3, min):.4f} "
        f"aa_inconclusive={worst(0.0, 1, max):.4f} detect_5pct={worst(0.05, 0, min):.4f} "
        f"detect_20pct={worst(0.20, 0, min):.4f} naive_aa_false_fail={worst(0.0, 2, max):.4f} "
        f"naive_detect_10pct={worst(0.10, 2, min):.4f} adaptive_tail_detect={min(x[2] for x in tail.values()) / t:.4f} "
        f"fixed_fail_4pct={worst(0.04, 0, max):.4f} adaptive_fail_4pct={worst(0.04, 3, max):.4f} "
        f"n_per_arm={args.n} trials={t}"
    )


if __name__ == "__main__":
    sys.exit(main())
