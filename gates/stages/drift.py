"""Drift: every golden prompt through both served models; compare outputs and distributions.

Drift itself is measured on greedy answers. A row with ``temperature`` (and a task check) is also
drawn ``repeats`` times per arm, repeat r of both arms with the same seed (common random
numbers), and its task score is the pass rate of those draws.

Given an earlier run of the same candidate (``reuse``: gates search's previous rung), the stage
takes that run's drift when it was measured on the same builds, prompts and settings
(gates/stages/drift_reuse.py): greedy answers do not change with the load."""

from __future__ import annotations

import dataclasses
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from gates.config.engine import Batching
from gates.context import RunContext
from gates.quality.batched import BatchedAgreement, batched_agreement
from gates.quality.drift import PromptDrift, prompt_drift, summarize
from gates.record import DeployResult, DriftResult, OptimizeResult, PreflightResult
from gates.stages.drift_reuse import ROWS, drift_key, read_reusable, write_key
from gates.triton.client import Generation, TextModelClient

FULL_VOCABULARY = 2**31 - 1  # TOP_K asking for every token (the served model caps it at its vocabulary)


class DriftStage:
    name = "drift"

    def __init__(self, reuse: Path | None = None) -> None:
        self.reuse = reuse  # an earlier run's directory whose drift this run may take (same key)

    def run(self, ctx: RunContext) -> None:
        pre = ctx.need(PreflightResult)
        prompts = ctx.need(OptimizeResult).served_prompts(pre.golden)
        key = drift_key(ctx, prompts)
        why = ""
        if self.reuse is not None:
            earlier = read_reusable(self.reuse, key)
            if not isinstance(earlier, str):
                rows, batched = earlier
                note = f"reused from {self.reuse} (same builds, prompts and settings)"
                self._finish(ctx, rows, batched, key, note, reused_from=self.reuse)
                return
            why = f"measured: {earlier}"
            ctx.progress(f"drift: {why}")
        rows, batched = self._measure(ctx, prompts)
        self._finish(ctx, rows, batched, key, why)

    def _measure(
        self, ctx: RunContext, prompts: tuple[str, ...]
    ) -> tuple[tuple[PromptDrift, ...], dict[str, BatchedAgreement] | None]:
        pre = ctx.need(PreflightResult)
        dep = ctx.need(DeployResult)
        golden = ctx.config.golden
        k = golden.top_k
        # golden.full_kl: the baseline returns every token's log-probability (the served model
        # caps k at its vocabulary) and the candidate is asked for the same ids: exact KL too
        asked_k = FULL_VOCABULARY if golden.full_kl else k
        b_model, c_model = dep.models["baseline"], dep.models["candidate"]
        budgets = [g.row.max_new_tokens or golden.max_new_tokens for g in pre.golden]

        def generate_all(model: str, top_k: int) -> tuple[list[Generation], list[list[str]]]:
            client = TextModelClient(dep.grpc_url)  # one stream at a time per client: one per arm
            try:
                out, draws = [], []
                for g, prompt, n in zip(pre.golden, prompts, budgets, strict=True):
                    dep.check_alive()
                    out.append(client.generate(model, prompt, n, top_k=top_k))
                    texts = []
                    if g.row.temperature is not None and g.row.has_check:  # draws only where a check scores them
                        for seed in g.row.seeds():
                            dep.check_alive()
                            texts.append(
                                client.generate(model, prompt, n, temperature=g.row.temperature, seed=seed).text
                            )
                    draws.append(texts)
                return out, draws
            finally:
                client.close()

        # The two arms generate side by side (one core each), then the candidate is teacher-forced
        # on the baseline's tokens: the same contexts, position by position.
        with ThreadPoolExecutor(max_workers=2) as pool:
            b_future = pool.submit(generate_all, b_model, asked_k)
            c_future = pool.submit(generate_all, c_model, 0)
            (baseline, b_draws), (candidate, c_draws) = b_future.result(), c_future.result()
        rows = []
        client = TextModelClient(dep.grpc_url)
        try:
            for g, prompt, n, b, c, b_d, c_d in zip(
                pre.golden, prompts, budgets, baseline, candidate, b_draws, c_draws, strict=True
            ):
                dep.check_alive()
                if b.token_ids:
                    forced = client.generate(
                        c_model, prompt, n, top_k=1, forced_ids=np.asarray(b.token_ids), logprob_ids=b.top_ids
                    )
                    argmax, selected = forced.top_ids[:, 0], forced.selected_logprobs
                else:
                    argmax = selected = b.top_ids
                meta = {**g.row.model_dump(), "prompt": g.row.display, "suite": g.suite, "line": g.line}
                rows.append(
                    prompt_drift(
                        meta=meta,
                        baseline_ids=b.token_ids,
                        baseline_text=b.text,
                        baseline_top_logprobs=b.top_logprobs,
                        candidate_ids=c.token_ids,
                        candidate_text=c.text,
                        candidate_forced_argmax=argmax,
                        candidate_forced_logprobs=selected,
                        baseline_samples=b_d,
                        candidate_samples=c_d,
                        top_k=k,
                        full_vocabulary=golden.full_kl,
                    )
                )
        finally:
            client.close()
        batched = None
        if ctx.config.serve.batching == Batching.ENGINE:
            greedy = [i for i, g in enumerate(pre.golden) if g.row.temperature is None]
            batched = {
                arm: batched_agreement(
                    dep.url,
                    dep.models[arm],
                    [prompts[i] for i in greedy],
                    [budgets[i] for i in greedy],
                    [gen[i].token_ids for i in greedy],
                    dep.check_alive,
                )
                for arm, gen in (("baseline", baseline), ("candidate", candidate))
            }
        return tuple(rows), batched

    def _finish(
        self,
        ctx: RunContext,
        rows: tuple[PromptDrift, ...],
        batched: dict[str, BatchedAgreement] | None,
        key: str,
        origin: str,
        reused_from: Path | None = None,
    ) -> None:
        k = ctx.config.golden.top_k
        summary = summarize(rows, k)
        path = ctx.run_dir / ROWS
        with path.open("w") as f:
            for r in rows:
                f.write(json.dumps(dataclasses.asdict(r)) + "\n")
        write_key(ctx.run_dir, key, batched, reused_from)
        ctx.put(
            DriftResult(
                summary,
                rows,
                path,
                batched=batched,
                note=(
                    f"exact match {summary.exact_match_rate:.3f}, top-1 {summary.top1_agreement:.3f}, "
                    f"mean KL ≥ {summary.mean_kl:.4g} (top-{k} + rest)"
                    + (f", full vocabulary {summary.mean_kl_full:.4g}" if summary.mean_kl_full is not None else "")
                    + f" over {summary.prompts} prompts"
                    + "".join(
                        f"; {arm} batched = one at a time on {a.exact_match_rate:.0%} of answers"
                        for arm, a in (batched or {}).items()
                    )
                    + (f"; {origin}" if origin else "")
                ),
            ),
        )
