"""Quality entries from the measurement results (their gates join the verdict in decide.py).

Kept apart from ``policy`` so the latency/drift policy and the quality statistics can change
independently.
"""

from __future__ import annotations

from gates.config.schema import GatesSection
from gates.errors import InfraError
from gates.judge.corpus_gates import corpus_entries
from gates.judge.quality import (
    ACCURACY,
    LM_EVAL,
    LOGLIKELIHOOD,
    QualityEntry,
    accuracy_entry,
    drift_entry,
    perplexity_entry,
    sampled_accuracy_entry,
)
from gates.record import DriftResult, QualityResult


def quality_entries(drift: DriftResult | None, quality: QualityResult | None, cfg: GatesSection) -> list[QualityEntry]:
    out: list[QualityEntry] = []
    if drift is not None:
        checked = [r for r in drift.rows if r.baseline_task_pass is not None and r.candidate_task_pass is not None]
        if any(r.temperature is not None for r in checked):  # sampled rows: scored on their draws
            out += sampled_accuracy_entry(
                "task_accuracy",
                ACCURACY,
                [r.outcomes("baseline") or () for r in checked],
                [r.outcomes("candidate") or () for r in checked],
                cfg,
                [r.temperature or 0.0 for r in checked],
            )
        else:
            out += accuracy_entry(
                "task_accuracy",
                ACCURACY,
                [bool(r.baseline_task_pass) for r in checked],
                [bool(r.candidate_task_pass) for r in checked],
                cfg,
            )
        rows = drift.rows
        out.append(
            drift_entry(
                "exact_match_rate",
                [float(r.exact_match) for r in rows],
                [r.weight for r in rows],
                cfg.exact_match_rate_min,
                cfg,
                minimum=True,
            )
        )
        pos = [float(r.positions) for r in rows]
        out.append(
            drift_entry(
                "top1_agreement", [r.top1_agreement for r in rows], pos, cfg.top1_agreement_min, cfg, minimum=True
            )
        )
        out.append(drift_entry("mean_kl", [r.mean_kl for r in rows], pos, cfg.mean_kl_max, cfg, minimum=False))
    if quality is not None and quality.choices:
        b, c = quality.choices["baseline"], quality.choices["candidate"]
        out += accuracy_entry(
            "multiple_choice_accuracy", LOGLIKELIHOOD, [x.correct for x in b], [x.correct for x in c], cfg
        )
    if quality is not None and quality.documents:
        b_docs, c_docs = quality.documents["baseline"], quality.documents["candidate"]
        out.append(perplexity_entry([d.nll for d in b_docs], [d.nll for d in c_docs], [d.tokens for d in b_docs], cfg))
    if quality is not None and quality.lm_eval:
        for b_task, c_task in zip(quality.lm_eval["baseline"], quality.lm_eval["candidate"], strict=True):
            if b_task.doc_ids != c_task.doc_ids:  # the pairing is by document: both arms saw the same ones
                raise InfraError(f"lm-eval task {b_task.task!r} scored different documents for the two arms")
            out += accuracy_entry(f"lm_eval:{b_task.task}", LM_EVAL, b_task.correct, c_task.correct, cfg)
    if quality is not None:
        out += corpus_entries(quality.corpus, cfg)  # golden.drift_corpus: judged on intervals by document
    return out
