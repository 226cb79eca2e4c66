"""Drift: every golden prompt through both served models; compare outputs and distributions."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from gates.context import RunContext
from gates.quality.drift import DriftSummary, PromptDrift, prompt_drift, summarize
from gates.stages.deploy import DeployResult
from gates.stages.preflight import PreflightResult
from gates.triton.client import TextModelClient


@dataclasses.dataclass(frozen=True)
class DriftResult:
    summary: DriftSummary
    rows: tuple[PromptDrift, ...]
    path: Path
    note: str


class DriftStage:
    name = "drift"

    def run(self, ctx: RunContext) -> None:
        pre = ctx.need("preflight", PreflightResult)
        dep = ctx.need("deploy", DeployResult)
        golden = ctx.config.golden
        k = golden.top_k
        b_model, c_model = dep.models["baseline"], dep.models["candidate"]
        client = TextModelClient(dep.grpc_url)
        rows = []
        try:
            for g in pre.golden:
                dep.check_alive()
                row = g.row
                n = row.max_new_tokens or golden.max_new_tokens
                b = client.generate(b_model, row.prompt, n, top_k=k)
                c = client.generate(c_model, row.prompt, n)
                if b.token_ids:
                    forced = client.generate(
                        c_model, row.prompt, n, top_k=1, forced_ids=np.asarray(b.token_ids), logprob_ids=b.top_ids
                    )
                    argmax, selected = forced.top_ids[:, 0], forced.selected_logprobs
                else:
                    argmax = selected = b.top_ids
                meta = {**row.model_dump(), "suite": g.suite, "line": g.line}
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
                    )
                )
        finally:
            client.close()
        summary = summarize(rows, k)
        path = ctx.run_dir / "drift.jsonl"
        with path.open("w") as f:
            for r in rows:
                f.write(json.dumps(dataclasses.asdict(r)) + "\n")
        ctx.put(
            self.name,
            DriftResult(
                summary,
                tuple(rows),
                path,
                note=(
                    f"exact match {summary.exact_match_rate:.3f}, top-1 {summary.top1_agreement:.3f}, "
                    f"mean KL {summary.mean_kl:.4g} over {summary.prompts} prompts"
                ),
            ),
        )
