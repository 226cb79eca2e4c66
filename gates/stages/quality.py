"""Quality: multiple-choice items and held-out text scored by log-likelihood through both served models.

Runs after drift on the same deployment. Each arm is scored on its own gRPC stream, side by side
(one core each, as drift does); items are scored in file order so the two arms' lists pair up.
The continuation tokens come from the base model's tokenizer: an optimized candidate keeps its
base's tokenizer, so both arms score the very same token ids.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from gates.context import RunContext
from gates.quality.lm_eval_tasks import TaskSamples, run_task
from gates.quality.scoring import ChoiceScore, DocumentScore, score_choice_item, score_document
from gates.record import DeployResult, OptimizeResult, PreflightResult, QualityResult
from gates.stages.corpus import run_corpus
from gates.triton.client import TextModelClient

T = TypeVar("T")


def _per_arm(dep: DeployResult, work: Callable[[TextModelClient, str], list[T]]) -> dict[str, tuple[T, ...]]:
    def run(model: str) -> tuple[T, ...]:
        client = TextModelClient(dep.grpc_url)  # one stream at a time per client: one per arm
        try:
            return tuple(work(client, model))
        finally:
            client.close()

    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {arm: pool.submit(run, name) for arm, name in dep.models.items()}
        return {arm: f.result() for arm, f in futures.items()}


def load_tokenizer(path: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path, local_files_only=True)


class QualityStage:
    name = "quality"

    def run(self, ctx: RunContext) -> None:
        pre = ctx.need(PreflightResult)
        if not pre.choices and not pre.documents and not pre.lm_eval and not pre.corpus:
            ctx.put(QualityResult({}, {}, None, "no multiple-choice items or held-out text configured"))
            return
        dep = ctx.need(DeployResult)
        tokenizer = load_tokenizer(ctx.need(OptimizeResult).baseline.path)
        max_tokens = ctx.config.golden.perplexity_max_tokens

        def choices(client: TextModelClient, model: str) -> list[ChoiceScore]:
            out = []
            for item in pre.choices:
                dep.check_alive()
                out.append(score_choice_item(client, model, tokenizer, item))
            return out

        def documents(client: TextModelClient, model: str) -> list[DocumentScore]:
            out = []
            for doc in pre.documents:
                dep.check_alive()
                out.append(score_document(client, model, tokenizer, doc, max_tokens))
            return out

        chosen = _per_arm(dep, choices) if pre.choices else {}
        docs = _per_arm(dep, documents) if pre.documents else {}
        tasks = run_lm_eval(dep, pre, tokenizer) if pre.lm_eval else {}
        corpus = run_corpus(ctx, pre, dep, tokenizer) if pre.corpus else None
        path = ctx.run_dir / "quality.jsonl"
        write_rows(path, chosen, docs, tasks)
        result = QualityResult(chosen, docs, path, "", tasks, corpus)
        ctx.put(dataclasses.replace(result, note=_note(result)))


def run_lm_eval(dep: DeployResult, pre: PreflightResult, tokenizer: Any) -> dict[str, tuple[TaskSamples, ...]]:
    """Each task through each arm, one arm after the other: lm-eval keeps global state (its
    task registry, logging), so the arms do not run side by side here."""
    out: dict[str, tuple[TaskSamples, ...]] = {}
    for arm, model in dep.models.items():
        client = TextModelClient(dep.grpc_url)
        try:
            dep.check_alive()
            out[arm] = tuple(run_task(spec, client, model, tokenizer) for spec in pre.lm_eval)
        finally:
            client.close()
    return out


def write_rows(
    path: Path,
    chosen: dict[str, tuple[ChoiceScore, ...]],
    docs: dict[str, tuple[DocumentScore, ...]],
    tasks: dict[str, tuple[TaskSamples, ...]],
) -> None:
    with path.open("w") as f:
        for arm, rows in chosen.items():
            for c in rows:
                f.write(json.dumps({"arm": arm, "kind": "choice", **dataclasses.asdict(c)}) + "\n")
        for arm, drows in docs.items():
            for d in drows:
                f.write(json.dumps({"arm": arm, "kind": "document", **dataclasses.asdict(d)}) + "\n")
        for arm, trows in tasks.items():
            for t in trows:
                for doc_id, ok in zip(t.doc_ids, t.correct, strict=True):
                    f.write(
                        json.dumps({"arm": arm, "kind": "lm_eval", "task": t.task, "doc_id": doc_id, "correct": ok})
                    )
                    f.write("\n")


def _rate(rows: Sequence[ChoiceScore]) -> float:
    return sum(r.correct for r in rows) / len(rows) if rows else math.nan


def _note(r: QualityResult) -> str:
    parts = []
    if r.choices:
        b, c = r.choices.get("baseline", ()), r.choices.get("candidate", ())
        parts.append(f"multiple choice {_rate(b):.3f} → {_rate(c):.3f} over {len(b)} items")
    if r.documents:
        parts.append(
            f"bits per byte {r.bits_per_byte('baseline'):.4f} → {r.bits_per_byte('candidate'):.4f} "
            f"over {len(r.documents.get('baseline', ()))} documents"
        )
    if r.corpus is not None:
        f = r.corpus.figures
        parts.append(
            f"corpus {f.tokens} tokens/arm: mean KL ≥ {f.kl_mean.estimate:.4g} ± {f.kl_mean_se:.2g}, "
            f"p99 {f.kl_percentiles['p99'].estimate:.4g}, same top-1 {f.same_top1.estimate:.4f}, "
            f"perplexity ratio {f.ppl_ratio.estimate:.4f} (prefill path)"
        )
    return "; ".join(parts)
