"""Corpus figures against a plain reference written from the definitions, on fixed logits.

The reference below does not use gates' code: full softmax of both arms' logits, the baseline's
top-k set, KL of the coarsened distributions (top-k tokens + one bucket for the rest), percentiles
by linear interpolation between order statistics, the delete-one-document jackknife by a loop.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from gates.quality.corpus_stats import ScoredWindow, figures, jackknife_se, positions

V, K = 64, 8


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _case(seed: int = 7, docs: int = 12) -> tuple[list[ScoredWindow], list[dict[str, np.ndarray]]]:
    """Fixed logits: per document 1-3 windows of 20-40 positions; the candidate is the baseline
    plus noise (heavier in some documents, so the figures vary by document)."""
    rng = np.random.default_rng(seed)
    windows, raw = [], []
    index = 0
    for d in range(docs):
        for _ in range(int(rng.integers(1, 4))):
            t = int(rng.integers(20, 41))
            base = rng.normal(0, 3, size=(t, V))
            cand = base + rng.normal(0, 0.3 + 0.2 * (d % 3), size=(t, V))
            true = rng.integers(0, V, size=t)
            lp_b = np.log(_softmax(base))
            lp_c = np.log(_softmax(cand))
            top = np.argsort(-lp_b, axis=-1, kind="stable")[:, :K]
            windows.append(
                ScoredWindow(
                    index=index,
                    document=d,
                    base_top_ids=top,
                    base_top_lp=np.take_along_axis(lp_b, top, axis=-1).astype(np.float32),
                    base_true_lp=lp_b[np.arange(t), true].astype(np.float32),
                    cand_top_lp=np.take_along_axis(lp_c, top, axis=-1).astype(np.float32),
                    cand_true_lp=lp_c[np.arange(t), true].astype(np.float32),
                    cand_argmax=lp_c.argmax(axis=-1),
                )
            )
            raw.append({"base": base, "cand": cand, "true": true, "doc": np.full(t, d)})
            index += 1
    return windows, raw


def _percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    rank = q / 100 * (len(s) - 1)
    lo = math.floor(rank)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (rank - lo)


def _reference(raw: list[dict[str, np.ndarray]]) -> dict[str, float]:
    kl, dp, same, nll_b, nll_c, tail, acc_lo, acc_hi, doc = [], [], [], [], [], [], [], [], []
    for w in raw:
        for i in range(w["base"].shape[0]):
            # float32 round trip: what the served model sends over the wire
            p = np.exp(np.log(_softmax(w["base"][i])).astype(np.float32).astype(np.float64))
            q = np.exp(np.log(_softmax(w["cand"][i])).astype(np.float32).astype(np.float64))
            top = sorted(range(V), key=lambda j: -p[j])[:K]
            p_rest = 1.0 - sum(p[j] for j in top)
            q_rest = 1.0 - sum(q[j] for j in top)
            d = sum(p[j] * math.log(p[j] / q[j]) for j in top)
            d += p_rest * math.log(p_rest / q_rest) if p_rest > 0 else 0.0
            kl.append(d)
            t = int(w["true"][i])
            dp.append(q[t] - p[t])
            same.append(float(int(np.argmax(q)) == int(np.argmax(p))))
            nll_b.append(-math.log(p[t]))
            nll_c.append(-math.log(q[t]))
            tail.append(p_rest)
            low = sum(min(p[j], q[j]) for j in top)
            acc_lo.append(low)
            acc_hi.append(low + min(p_rest, q_rest))
            doc.append(int(w["doc"][i]))
    n = len(kl)
    groups = sorted(set(doc))
    loo = []
    for g in groups:
        rest = [k for k, dd in zip(kl, doc, strict=True) if dd != g]
        loo.append(sum(rest) / len(rest))
    m = sum(loo) / len(loo)
    jack = math.sqrt((len(groups) - 1) / len(groups) * sum((x - m) ** 2 for x in loo))
    return {
        "kl_mean": sum(kl) / n,
        "kl_p90": _percentile(kl, 90),
        "kl_p99": _percentile(kl, 99),
        "kl_p99.9": _percentile(kl, 99.9),
        "kl_max": max(kl),
        "kl_se": jack,
        "dp_mean": sum(dp) / n,
        "dp_rms": math.sqrt(sum(x * x for x in dp) / n),
        "dp_p1": _percentile(dp, 1),
        "dp_p99": _percentile(dp, 99),
        "same_top1": sum(same) / n,
        "ppl_b": math.exp(sum(nll_b) / n),
        "ppl_c": math.exp(sum(nll_c) / n),
        "ppl_ratio": math.exp(sum(nll_c) / n) / math.exp(sum(nll_b) / n),
        "tail_mean": sum(tail) / n,
        "tail_max": max(tail),
        "accept_low": sum(acc_lo) / n,
        "accept_high": sum(acc_hi) / n,
        "tokens": n,
        "documents": len(groups),
    }


def test_every_figure_matches_the_reference_to_1e_6() -> None:
    windows, raw = _case()
    ref = _reference(raw)
    f = figures(positions(windows), K, 0.9)
    got = {
        "kl_mean": f.kl_mean.estimate,
        "kl_p90": f.kl_percentiles["p90"].estimate,
        "kl_p99": f.kl_percentiles["p99"].estimate,
        "kl_p99.9": f.kl_percentiles["p99.9"].estimate,
        "kl_max": f.kl_max,
        "kl_se": f.kl_mean_se,
        "dp_mean": f.dp_mean.estimate,
        "dp_rms": f.dp_rms,
        "dp_p1": f.dp_p1,
        "dp_p99": f.dp_p99,
        "same_top1": f.same_top1.estimate,
        "ppl_b": f.ppl_baseline.estimate,
        "ppl_c": f.ppl_candidate.estimate,
        "ppl_ratio": f.ppl_ratio.estimate,
        "tail_mean": f.tail_mass["mean"],
        "tail_max": f.tail_mass["max"],
        "accept_low": f.accept_low,
        "accept_high": f.accept_high,
        "tokens": f.tokens,
        "documents": f.documents,
    }
    for key, value in ref.items():
        assert got[key] == pytest.approx(value, rel=1e-6, abs=1e-6), key
    assert f.kl_mean.estimate > 0.0 and f.same_top1.estimate < 1.0  # the case has drift to measure


def test_intervals_contain_the_estimate_and_come_from_documents() -> None:
    windows, _ = _case()
    f = figures(positions(windows), K, 0.9)
    for e in (f.kl_mean, f.same_top1, f.ppl_ratio, f.dp_mean, *f.kl_percentiles.values()):
        assert e.low <= e.estimate <= e.high
        assert e.low < e.high
    # one document: the cluster bootstrap has nothing to resample, the interval collapses
    one = [w for w in windows if w.document == 0]
    g = figures(positions(one), K, 0.9)
    assert g.kl_mean.low == pytest.approx(g.kl_mean.high)
    assert math.isnan(g.kl_mean_se)


def test_top_k_kl_is_a_lower_bound_and_exact_over_the_whole_vocabulary() -> None:
    windows, raw = _case(seed=3, docs=4)
    full = [
        ScoredWindow(
            w.index,
            w.document,
            np.argsort(-r["base"], axis=-1)[:, :V],
            np.take_along_axis(np.log(_softmax(r["base"])), np.argsort(-r["base"], axis=-1), axis=-1),
            w.base_true_lp,
            np.take_along_axis(np.log(_softmax(r["cand"])), np.argsort(-r["base"], axis=-1), axis=-1),
            w.cand_true_lp,
            w.cand_argmax,
        )
        for w, r in zip(windows, raw, strict=True)
    ]
    exact = positions(full).kl
    bound = positions(windows).kl
    assert np.all(bound <= exact + 1e-9)
    p = np.concatenate([_softmax(r["base"]) for r in raw])
    q = np.concatenate([_softmax(r["cand"]) for r in raw])
    assert exact == pytest.approx((p * np.log(p / q)).sum(axis=1), abs=1e-9)


def test_jackknife_by_loop() -> None:
    values = np.array([0.1, 0.3, 0.2, 0.5, 0.4, 0.9])
    docs = np.array([0, 0, 1, 1, 2, 2])
    loo = np.array([values[docs != g].mean() for g in range(3)])
    expected = math.sqrt(2 / 3 * ((loo - loo.mean()) ** 2).sum())
    assert jackknife_se(values, docs) == pytest.approx(expected)


def test_dp_sign_test_sees_one_sided_damage() -> None:
    windows, _ = _case()
    damaged = [
        ScoredWindow(
            w.index,
            w.document,
            w.base_top_ids,
            w.base_top_lp,
            w.base_true_lp,
            w.cand_top_lp,
            np.log(np.exp(w.base_true_lp) * 0.8),  # the candidate always gives the true token less
            w.cand_argmax,
        )
        for w in windows
    ]
    f = figures(positions(damaged), K, 0.9)
    assert f.dp_negative == 1.0 and f.dp_sign_p < 0.001 and f.dp_mean.high < 0
    assert f.ppl_ratio.low > 1.0
