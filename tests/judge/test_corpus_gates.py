"""Corpus gates judged on their intervals: PASS only with the whole interval on the good side."""

from __future__ import annotations

import dataclasses
import math

import pytest

from gates.config.schema import GatesSection
from gates.judge.corpus_gates import corpus_entries
from gates.judge.quality_gates import quality_entries
from gates.judge.verdict import Status
from gates.quality.corpus_scoring import CorpusRun
from gates.quality.corpus_stats import CorpusFigures, Estimate
from gates.record import QualityResult


def _figures(docs: int = 40, **over: Estimate) -> CorpusFigures:
    e = Estimate
    base = CorpusFigures(
        documents=docs,
        windows=200,
        tokens=100_000,
        top_k=20,
        level=0.98,
        kl_mean=e(0.01, 0.008, 0.012),
        kl_mean_se=0.001,
        kl_percentiles={"p90": e(0.02, 0.018, 0.022), "p99": e(0.1, 0.09, 0.11), "p99.9": e(0.3, 0.2, 0.4)},
        kl_max=1.2,
        tail_mass={"mean": 0.2, "p99": 0.7, "max": 0.9},
        dp_mean=e(-0.001, -0.002, 0.0),
        dp_rms=0.01,
        dp_p1=-0.04,
        dp_p99=0.03,
        dp_negative=0.52,
        dp_positive=0.48,
        dp_sign_p=0.3,
        same_top1=e(0.95, 0.94, 0.96),
        ppl_baseline=e(20.0, 18.0, 22.0),
        ppl_candidate=e(20.2, 18.1, 22.3),
        ppl_ratio=e(1.01, 1.005, 1.015),
        accept_low=0.8,
        accept_high=0.95,
        histogram=((0.0, math.inf, 100_000, 1.0),),
    )
    p99 = over.pop("kl_p99", None)
    figures = dataclasses.replace(base, **over)
    if p99 is not None:
        figures = dataclasses.replace(figures, kl_percentiles={**base.kl_percentiles, "p99": p99})
    return figures


def _run(figures: CorpusFigures) -> CorpusRun:
    return CorpusRun(("c.txt",), 512, figures, {"baseline": 100.0, "candidate": 80.0}, None, ())


CFG = GatesSection(corpus_kl_mean_max=0.05, corpus_kl_p99_max=0.5, corpus_same_top1_min=0.9, corpus_ppl_ratio_max=1.05)


def _status(figures: CorpusFigures, cfg: GatesSection = CFG) -> dict[str, str]:
    return {e.name: e.status for e in corpus_entries(_run(figures), cfg)}


def test_all_inside_pass() -> None:
    assert set(_status(_figures()).values()) == {Status.PASS}


@pytest.mark.parametrize(
    ("field", "value", "gate", "status"),
    [
        ("kl_mean", Estimate(0.06, 0.055, 0.07), "corpus_kl_mean", Status.FAIL),
        ("kl_mean", Estimate(0.045, 0.04, 0.052), "corpus_kl_mean", Status.INCONCLUSIVE),
        ("same_top1", Estimate(0.85, 0.83, 0.87), "corpus_same_top1", Status.FAIL),
        ("same_top1", Estimate(0.91, 0.89, 0.93), "corpus_same_top1", Status.INCONCLUSIVE),
        ("ppl_ratio", Estimate(1.2, 1.1, 1.3), "corpus_ppl_ratio", Status.FAIL),
        ("kl_p99", Estimate(0.6, 0.55, 0.7), "corpus_kl_p99", Status.FAIL),
        ("kl_p99", Estimate(0.45, 0.4, 0.55), "corpus_kl_p99", Status.INCONCLUSIVE),
    ],
)
def test_interval_decides(field: str, value: Estimate, gate: str, status: Status) -> None:
    got = _status(_figures(**{field: value}))
    assert got[gate] == status
    assert all(s == Status.PASS for name, s in got.items() if name != gate)


def test_too_few_documents_never_pass() -> None:
    entries = corpus_entries(_run(_figures(docs=5)), CFG)
    assert {e.status for e in entries} == {Status.INCONCLUSIVE}
    assert all("too few to certify" in e.reason for e in entries)


def test_null_thresholds_are_not_applied_and_reasons_state_path_and_bound() -> None:
    cfg = GatesSection(
        corpus_kl_mean_max=None, corpus_kl_p99_max=None, corpus_same_top1_min=None, corpus_ppl_ratio_max=None
    )
    assert set(_status(_figures(), cfg).values()) == {Status.NOT_APPLIED}
    kl = corpus_entries(_run(_figures()), CFG)[0]
    assert "prefill path" in kl.reason and "outside its top-20" in kl.reason and "jackknife" in kl.reason


def test_entries_join_the_quality_gates_only_with_a_corpus() -> None:
    with_corpus = QualityResult({}, {}, None, "", {}, _run(_figures()))
    names = {e.name for e in quality_entries(None, with_corpus, CFG)}
    assert names == {"corpus_kl_mean", "corpus_kl_p99", "corpus_same_top1", "corpus_ppl_ratio"}
    assert quality_entries(None, QualityResult({}, {}, None, ""), CFG) == []
