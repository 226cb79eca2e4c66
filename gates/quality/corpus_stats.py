"""Corpus drift figures with intervals by document: pure functions, no I/O.

Per scored position the baseline gives its top-k log-probabilities and the true next token's;
the candidate, read on the same window, gives its log-probabilities at the baseline's top-k ids,
the true token's and its own top-1. From those:

- KL(baseline ‖ candidate) over the baseline's top-k tokens plus one bucket for the rest of the
  vocabulary (gates.quality.drift.kl_topk): merging outcomes never raises KL, so this is a lower
  bound of the full-vocabulary KL. What it leaves out is bounded by the baseline's mass outside
  its top k (``tail``), reported beside the figure (mean, p99, max).
- Δp = p_candidate(true) - p_baseline(true); its mean, RMS and 1st/99th percentiles; the
  asymmetry test is an exact two-sided sign test over documents' mean Δp (noise is symmetric
  around 0, damage pushes one way).
- same top-1: the candidate's most likely token is the baseline's.
- perplexity of each arm on the true tokens, exp(mean NLL), and their ratio candidate/baseline.
- the expected acceptance of the candidate as a draft for the baseline, Σ min(p, q), bounded
  from the top-k: at least Σ over the top k, at most that plus min of the two tail masses.

Point figures are over all positions (percentiles: numpy's linear interpolation). Intervals are
by document, so correlated positions are not counted as independent: a cluster (document)
bootstrap, percentile method, ``RESAMPLES`` resamples with a fixed seed; the ± SE of mean KL is
the delete-one-document jackknife.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.stats import binomtest

from gates.quality.drift import kl_topk

RESAMPLES = 1000
SEED = 20260529
PERCENTILES = (90.0, 99.0, 99.9)
KL_BINS = (0.0, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, math.inf)  # histogram / CDF of per-position KL


@dataclasses.dataclass(frozen=True)
class ScoredWindow:
    """One window read by both arms: arrays over its scored positions (``T``)."""

    index: int
    document: int
    base_top_ids: NDArray[Any]  # [T, k]
    base_top_lp: NDArray[Any]  # [T, k]
    base_true_lp: NDArray[Any]  # [T]
    cand_top_lp: NDArray[Any]  # [T, k] the candidate's log-probabilities at the baseline's top-k ids
    cand_true_lp: NDArray[Any]  # [T]
    cand_argmax: NDArray[Any]  # [T]


@dataclasses.dataclass(frozen=True)
class Positions:
    """Per-position values of every window, concatenated, with each position's document."""

    doc: NDArray[Any]
    window: NDArray[Any]
    kl: NDArray[Any]
    dp: NDArray[Any]
    same: NDArray[Any]
    base_nll: NDArray[Any]
    cand_nll: NDArray[Any]
    tail: NDArray[Any]
    accept_low: NDArray[Any]
    accept_high: NDArray[Any]


def positions(windows: Sequence[ScoredWindow]) -> Positions:
    cols: dict[str, list[NDArray[Any]]] = {f.name: [] for f in dataclasses.fields(Positions)}
    for w in windows:
        b_lp = np.asarray(w.base_top_lp, dtype=np.float64)
        c_lp = np.asarray(w.cand_top_lp, dtype=np.float64)
        p, q = np.exp(b_lp), np.exp(c_lp)
        p_rest = np.clip(1.0 - p.sum(axis=1), 0.0, 1.0)
        q_rest = np.clip(1.0 - q.sum(axis=1), 0.0, 1.0)
        low = np.minimum(p, q).sum(axis=1)
        b_true = np.asarray(w.base_true_lp, dtype=np.float64).reshape(-1)
        c_true = np.asarray(w.cand_true_lp, dtype=np.float64).reshape(-1)
        n = b_true.size
        cols["doc"].append(np.full(n, w.document, dtype=np.int64))
        cols["window"].append(np.full(n, w.index, dtype=np.int64))
        cols["kl"].append(kl_topk(b_lp, c_lp))
        cols["dp"].append(np.exp(c_true) - np.exp(b_true))
        cols["same"].append((np.asarray(w.cand_argmax).reshape(-1) == np.asarray(w.base_top_ids)[:, 0]).astype(float))
        cols["base_nll"].append(-b_true)
        cols["cand_nll"].append(-c_true)
        cols["tail"].append(p_rest)
        cols["accept_low"].append(low)
        cols["accept_high"].append(low + np.minimum(p_rest, q_rest))
    return Positions(**{k: np.concatenate(v) if v else np.zeros(0) for k, v in cols.items()})


@dataclasses.dataclass(frozen=True)
class Estimate:
    estimate: float
    low: float
    high: float

    def to_json(self) -> dict[str, float | None]:
        return {k: (v if math.isfinite(v) else None) for k, v in dataclasses.asdict(self).items()}


@dataclasses.dataclass(frozen=True)
class CorpusFigures:
    documents: int
    windows: int
    tokens: int  # scored positions per arm
    top_k: int
    level: float  # two-sided level of every interval
    kl_mean: Estimate
    kl_mean_se: float  # delete-one-document jackknife
    kl_percentiles: dict[str, Estimate]  # "p90", "p99", "p99.9"
    kl_max: float
    tail_mass: dict[str, float]  # baseline mass outside its top k: "mean", "p99", "max"
    dp_mean: Estimate
    dp_rms: float
    dp_p1: float
    dp_p99: float
    dp_negative: float  # share of positions where the candidate gives the true token less
    dp_positive: float
    dp_sign_p: float  # sign test over documents' mean Δp, two-sided
    same_top1: Estimate
    ppl_baseline: Estimate
    ppl_candidate: Estimate
    ppl_ratio: Estimate
    accept_low: float  # Σ min(p, q): expected acceptance of the candidate drafting for the baseline
    accept_high: float
    histogram: tuple[tuple[float, float, int, float], ...]  # (from, to, positions, cumulative share)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, Estimate):
                out[f.name] = v.to_json()
            elif isinstance(v, dict):
                out[f.name] = {k: (x.to_json() if isinstance(x, Estimate) else fin(x)) for k, x in v.items()}
            elif f.name == "histogram":
                out[f.name] = [{"low": a, "high": fin(b), "positions": n, "cumulative": c} for a, b, n, c in v]
            else:
                out[f.name] = fin(v) if isinstance(v, float) else v
        return out


def fin(x: float) -> float | None:
    return x if math.isfinite(x) else None


def figures(pos: Positions, top_k: int, confidence: float) -> CorpusFigures:
    """Every corpus figure with its interval at two-sided level ``confidence``."""
    nan = math.nan
    docs = np.unique(pos.doc)
    if pos.kl.size == 0:
        e = Estimate(nan, nan, nan)
        return CorpusFigures(
            0, 0, 0, top_k, confidence, e, nan, {}, nan, {}, e, nan, nan, nan, nan, nan, 1.0, e, e, e, e, nan, nan, ()
        )
    d_idx = np.searchsorted(docs, pos.doc)
    counts = _resample_counts(docs.size)
    alpha = (1 - confidence) / 2

    def mean_of(values: NDArray[Any]) -> Estimate:
        sums = np.bincount(d_idx, weights=values, minlength=docs.size)
        n = np.bincount(d_idx, minlength=docs.size).astype(float)
        boot = (counts @ sums) / np.maximum(counts @ n, 1.0)
        lo, hi = np.quantile(boot, [alpha, 1 - alpha])
        return Estimate(float(values.mean()), float(lo), float(hi))

    def ppl_of(nll: NDArray[Any]) -> Estimate:
        m = mean_of(nll)
        return Estimate(math.exp(m.estimate), math.exp(m.low), math.exp(m.high))

    pcts = _percentiles(pos.kl, d_idx, counts, alpha)
    ratio = mean_of(pos.cand_nll - pos.base_nll)  # log of the perplexity ratio
    doc_dp = np.bincount(d_idx, weights=pos.dp) / np.bincount(d_idx)
    signs = (int((doc_dp > 0).sum()), int((doc_dp < 0).sum()))
    sign_p = float(binomtest(signs[0], sum(signs), 0.5).pvalue) if sum(signs) else 1.0
    return CorpusFigures(
        documents=int(docs.size),
        windows=int(np.unique(pos.window).size),
        tokens=int(pos.kl.size),
        top_k=top_k,
        level=confidence,
        kl_mean=mean_of(pos.kl),
        kl_mean_se=jackknife_se(pos.kl, d_idx),
        kl_percentiles=pcts,
        kl_max=float(pos.kl.max()),
        tail_mass={
            "mean": float(pos.tail.mean()),
            "p99": float(np.percentile(pos.tail, 99)),
            "max": float(pos.tail.max()),
        },
        dp_mean=mean_of(pos.dp),
        dp_rms=float(np.sqrt(np.mean(pos.dp**2))),
        dp_p1=float(np.percentile(pos.dp, 1)),
        dp_p99=float(np.percentile(pos.dp, 99)),
        dp_negative=float((pos.dp < 0).mean()),
        dp_positive=float((pos.dp > 0).mean()),
        dp_sign_p=sign_p,
        same_top1=mean_of(pos.same),
        ppl_baseline=ppl_of(pos.base_nll),
        ppl_candidate=ppl_of(pos.cand_nll),
        ppl_ratio=Estimate(math.exp(ratio.estimate), math.exp(ratio.low), math.exp(ratio.high)),
        accept_low=float(pos.accept_low.mean()),
        accept_high=float(pos.accept_high.mean()),
        histogram=histogram(pos.kl),
    )


def _resample_counts(n_docs: int) -> NDArray[Any]:
    """[RESAMPLES, n_docs]: how often each document is drawn in each cluster-bootstrap resample."""
    rng = np.random.default_rng(SEED)
    idx = rng.integers(0, n_docs, size=(RESAMPLES, n_docs))
    counts: NDArray[Any] = np.zeros((RESAMPLES, n_docs))
    np.add.at(counts, (np.arange(RESAMPLES)[:, None], idx), 1.0)
    return counts


def _percentiles(kl: NDArray[Any], d_idx: NDArray[Any], counts: NDArray[Any], alpha: float) -> dict[str, Estimate]:
    """KL percentiles over positions, each with a cluster-bootstrap interval: in every resample a
    position weighs as often as its document was drawn (inverted-CDF weighted quantile)."""
    order = np.argsort(kl, kind="stable")
    sorted_kl, sorted_doc = kl[order], d_idx[order]
    boot = np.empty((counts.shape[0], len(PERCENTILES)))
    fractions = np.asarray(PERCENTILES) / 100.0
    for b in range(counts.shape[0]):
        cw = np.cumsum(counts[b][sorted_doc])
        at = np.searchsorted(cw, fractions * cw[-1], side="left")
        boot[b] = sorted_kl[np.minimum(at, sorted_kl.size - 1)]
    out = {}
    for j, q in enumerate(PERCENTILES):
        lo, hi = np.quantile(boot[:, j], [alpha, 1 - alpha])
        out[f"p{q:g}"] = Estimate(float(np.percentile(kl, q)), float(lo), float(hi))
    return out


def jackknife_se(values: NDArray[Any], d_idx: NDArray[Any]) -> float:
    """Standard error of the mean over positions, by deleting one document at a time."""
    sums = np.bincount(d_idx, weights=values)
    n = np.bincount(d_idx).astype(float)
    g = sums.size
    if g < 2:
        return math.nan
    loo = (sums.sum() - sums) / (n.sum() - n)
    return float(math.sqrt((g - 1) / g * float(np.sum((loo - loo.mean()) ** 2))))


def histogram(kl: NDArray[Any]) -> tuple[tuple[float, float, int, float], ...]:
    """Positions per KL bin [from, to) and the share at or below each bin's upper edge."""
    out = []
    total = kl.size
    below = 0
    for lo, hi in itertools.pairwise(KL_BINS):
        n = int(((kl >= lo) & (kl < hi)).sum())
        below += n
        out.append((lo, hi, n, below / total if total else math.nan))
    return tuple(out)


@dataclasses.dataclass(frozen=True)
class WindowRow:
    index: int
    document: int
    tokens: int
    kl_mean: float
    kl_max: float
    same_top1: float


def window_rows(pos: Positions) -> list[WindowRow]:
    out = []
    for w in np.unique(pos.window):
        sel = pos.window == w
        out.append(
            WindowRow(
                int(w),
                int(pos.doc[sel][0]),
                int(sel.sum()),
                float(pos.kl[sel].mean()),
                float(pos.kl[sel].max()),
                float(pos.same[sel].mean()),
            )
        )
    return out


@dataclasses.dataclass(frozen=True)
class PathCheck:
    """The same sample of windows read in one pass (prefill) and token by token (decode), per arm,
    and the arms compared on each path."""

    windows: int
    positions: int
    top1_differ: dict[str, int]  # arm -> positions whose top-1 differs between the paths
    kl_paths: dict[str, float]  # arm -> mean KL(prefill ‖ decode) over the baseline's top-k + rest
    kl_prefill: float  # baseline vs candidate on these positions, prefill path
    kl_decode: float
    same_top1_prefill: float
    same_top1_decode: float

    def to_json(self) -> dict[str, Any]:
        return {k: (fin(v) if isinstance(v, float) else v) for k, v in dataclasses.asdict(self).items()}
