"""The drift corpus inside the quality stage: windows cut with the base tokenizer, scored by both
served arms (gates/quality/corpus_scoring.py), summarized with intervals by document."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from gates.context import RunContext
from gates.errors import ConfigError
from gates.quality.corpus import WorstWindow, check_context, cut_windows, served_context
from gates.quality.corpus_scoring import CorpusRun, score_windows
from gates.quality.corpus_stats import figures, positions, window_rows
from gates.record import BuildResult, DeployResult, PreflightResult


def run_corpus(ctx: RunContext, pre: PreflightResult, dep: DeployResult, tokenizer: Any) -> CorpusRun:
    golden = ctx.config.golden
    context = golden.drift_context
    where = ctx.pipeline.where("golden", "drift_context")
    build = ctx.get(BuildResult)
    if build is not None:
        served = {arm: served_context(getattr(build, arm).serve_path) for arm in ("baseline", "candidate")}
        check_context(context, served, where, str(ctx.pipeline.path))
    windows = cut_windows(tokenizer, list(pre.corpus), context, golden.drift_max_windows, golden.drift_join_documents)
    if not windows:
        raise ConfigError(
            f"{ctx.pipeline.where('golden', 'drift_corpus')}: golden.drift_corpus has no window of at least 16 tokens",
            str(ctx.pipeline.path),
        )
    joined = ", documents joined (each window its own cluster)" if golden.drift_join_documents else ""
    ctx.progress(f"drift corpus: {len(windows)} windows of ≤ {context} tokens{joined}, both arms, one pass each")
    scores = score_windows(dep.grpc_url, dep.models, windows, golden.top_k, dep.check_alive, golden.drift_decode_sample)
    pos = positions(scores.windows)
    figs = figures(pos, golden.top_k, 1 - 2 * (1 - ctx.config.gates.confidence))
    rows = window_rows(pos)
    worst = []
    for r in sorted(rows, key=lambda r: -r.kl_mean)[: golden.worst]:
        w = windows[r.index]
        text = tokenizer.decode(list(w.ids), skip_special_tokens=False)
        worst.append(WorstWindow(r.index, w.source, w.line, w.start, r.tokens, r.kl_mean, r.kl_max, r.same_top1, text))
    path = ctx.run_dir / "corpus.jsonl"
    with path.open("w") as f:
        for r in rows:
            w = windows[r.index]
            f.write(json.dumps({**dataclasses.asdict(r), "source": w.source, "line": w.line, "start": w.start}) + "\n")
    return CorpusRun(tuple(golden.drift_corpus), context, figs, scores.seconds, scores.path_check, tuple(worst), path)
