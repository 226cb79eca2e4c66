"""Paired statistics for per-item pass rates over sampled repeats: pure functions, no I/O.

An item answered by sampling (``temperature > 0``) is drawn ``repeats`` times in each arm with
the same seeds (repeat r of the baseline pairs with repeat r of the candidate); its score is its
pass fraction in [0, 1]. Items are the unit of the bootstrap and of the test: the repeats of one
item are not independent items.

- :func:`paired_rates`: both arms' mean pass rate, the drop (baseline - candidate) with a paired
  bootstrap over items, and the p-value of the paired sign-flip test. Every item with one repeat:
  exactly :func:`paired_difference`. The bootstrap collapses to a point when every item's
  difference is the same (all 0: no draw disagreed), so the interval is never narrower than
  Newcombe's on the 2x2 table of draws (repeat r of one arm against repeat r of the other). That
  floor may count draws, not items: no disagreement among N draws has probability
  prod (1 - q_i)^R <= exp(-N * mean q), so its bound on the mean disagreement rate holds however
  the items differ; where items do differ, the bootstrap over items is the wider of the two.
  Both are asymptotic and too narrow on a few items where the candidate never wins (an upper
  bound below a true drop of 0.09 in 11.7% of 8-item suites at 5%), so the upper end is also never
  below Clopper-Pearson bounds of the two discordant cells at the effective number of
  draws (:func:`gates.judge.paired.discordance_upper`).
- :func:`sign_flip_test`: the paired permutation test of the mean per-item difference; on 0/1
  outcomes it is McNemar's exact test.
- :func:`score_variance`: the variance of one item's score for sample-size planning.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from gates.judge.paired import (
    RESAMPLES,
    SEED,
    Interval,
    PairedAccuracy,
    bootstrap_indices,
    discordance_upper,
    drop_and_recovery,
    newcombe_paired,
    paired_difference,
    wilson,
)

EXACT_MAX = 16  # up to 2**16 sign patterns are enumerated; beyond, a seeded Monte Carlo
FLIPS = 20_000
TIE = 1e-9


def sign_flip_test(differences: Sequence[float] | NDArray[np.float64], flips: int = FLIPS, seed: int = SEED) -> float:
    """Two-sided p-value of the paired sign-flip (permutation) test of mean difference 0.

    Under H0 each item's difference is as likely positive as negative: the p-value is the share
    of sign patterns whose |sum| reaches the observed |sum|. Zero differences flip to themselves
    and are left out. Exact up to ``EXACT_MAX`` non-zero items, else ``flips`` random patterns
    ((hits + 1) / (flips + 1), never 0).
    """
    d = np.asarray(differences, dtype=np.float64)
    d = d[np.abs(d) > TIE]
    m = int(d.size)
    if m == 0:
        return 1.0
    observed = abs(float(d.sum())) - TIE
    if m <= EXACT_MAX:
        patterns = ((np.arange(2**m)[:, None] >> np.arange(m)) & 1) * 2 - 1
        return float(np.mean(np.abs(patterns @ d) >= observed))
    rng = np.random.default_rng(seed)
    hits, done = 0, 0
    while done < flips:
        chunk = min(2000, flips - done)
        signs = rng.integers(0, 2, size=(chunk, m)) * 2 - 1
        hits += int((np.abs(signs @ d) >= observed).sum())
        done += chunk
    return (hits + 1) / (flips + 1)


def score_variance(scores: Sequence[float] | NDArray[np.float64], repeats: Sequence[int]) -> float:
    """Variance of one item's score (its pass rate over ``repeats`` draws), clamped to what it can be.

    With p the mean score, the variance of a score in [0, 1] is at most p(1-p) (0/1 outcomes),
    and a mean of R draws varies at least p(1-p)/R (every item equally hard); the observed
    between-item variance is kept within those bounds (a few items can show none).
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.size == 0:
        return math.nan
    p = float(s.mean())
    top = p * (1 - p)
    low = top * float(np.mean([1 / max(r, 1) for r in repeats]))
    seen = float(s.var(ddof=1)) if s.size > 1 else top
    return min(top, max(low, seen))


def _rates(outcomes: Sequence[Sequence[bool]]) -> NDArray[np.float64]:
    return np.asarray([float(np.mean(np.asarray(o, dtype=np.float64))) for o in outcomes], dtype=np.float64)


def paired_rates(
    baseline: Sequence[Sequence[bool]],
    candidate: Sequence[Sequence[bool]],
    confidence: float,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> PairedAccuracy:
    """Per-item pass rates of both arms (outcomes per repeat, paired repeat by repeat);
    ``confidence`` is the two-sided level. Items with a single repeat count as 0/1 outcomes."""
    if len(baseline) != len(candidate):
        raise ValueError(f"paired items differ in number: {len(baseline)} baseline, {len(candidate)} candidate")
    counts = [len(o) for o in baseline]
    for i, (bo, co) in enumerate(zip(baseline, candidate, strict=True)):
        if len(bo) != len(co) or not bo:
            raise ValueError(f"item {i}: {len(bo)} baseline repeats, {len(co)} candidate repeats")
    if all(r == 1 for r in counts):
        return paired_difference([o[0] for o in baseline], [o[0] for o in candidate], confidence, resamples, seed)
    n = len(counts)
    b, c = _rates(baseline), _rates(candidate)
    pairs = [
        (np.asarray(bo, dtype=bool), np.asarray(co, dtype=bool)) for bo, co in zip(baseline, candidate, strict=True)
    ]
    both = sum(int((x & y).sum()) for x, y in pairs)
    only_b = sum(int((x & ~y).sum()) for x, y in pairs)
    only_c = sum(int((~x & y).sum()) for x, y in pairs)
    neither = sum(counts) - both - only_b - only_c
    reps = np.asarray(counts, dtype=np.float64)
    share_b = np.asarray([float((x & ~y).mean()) for x, y in pairs])
    share_c = np.asarray([float((~x & y).mean()) for x, y in pairs])
    low, high = newcombe_paired(both, only_b, only_c, neither, confidence)
    floor = (low, max(high, discordance_upper(share_b, share_c, reps, confidence)))
    drop, recovery = drop_and_recovery(b, c, floor, confidence, resamples, seed)
    idx = bootstrap_indices(n, resamples, seed)
    d = b - c
    return PairedAccuracy(
        n=n,
        baseline=_arm_interval(b, idx, confidence),
        candidate=_arm_interval(c, idx, confidence),
        drop=drop,
        recovery=recovery,
        p_value=sign_flip_test(d),
        only_baseline=only_b,
        only_candidate=only_c,
        item_sd=float(d.std(ddof=1)) if n > 1 else math.nan,
        repeats=max(counts),
        score_variance=score_variance(b, counts),
    )


def _arm_interval(rates: NDArray[np.float64], idx: NDArray[np.int64], confidence: float) -> Interval:
    """Mean pass rate: Wilson's interval on n items at the observed mean (the widest a [0, 1]
    score allows), never narrower than the bootstrap over items."""
    n = int(rates.size)
    w = wilson(float(rates.sum()), n, confidence)
    alpha = (1 - confidence) / 2
    lo, hi = (float(x) for x in np.quantile(rates[idx].mean(axis=1), [alpha, 1 - alpha]))
    return Interval(float(rates.mean()), max(0.0, min(w.low, lo)), min(1.0, max(w.high, hi)))
