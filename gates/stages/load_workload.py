"""The load stage's part of ``load.workload``: build the conversations once, in the served model's
tokenizer, for the locust worker to replay; read the per-class figures and scoped series back."""

from __future__ import annotations

import dataclasses
import itertools
import math
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gates.config.schema import Pipeline
from gates.loadgen.classes import ClassFigures, class_figures, scoped_series
from gates.loadgen.spec import LoadSpec
from gates.loadmodes import LoadMode
from gates.models.prompts import NoChatTemplate, render_chat
from gates.quality.golden import ChatMessage
from gates.workloads import WORKLOADS
from gates.workloads.base import WORDS, Build, Conversation, WordText, write_conversations

Series = dict[str, tuple[tuple[float, ...], tuple[float, ...]]]


class TokenizerText:
    """Token counts and token-exact random text in a Hugging Face tokenizer; chats by its template."""

    def __init__(self, tokenizer: Any) -> None:
        self.tok = tokenizer

    def tokens(self, text: str) -> int:
        return len(self.tok(text, add_special_tokens=False)["input_ids"])

    def make(self, n: int, rng: random.Random) -> str:
        ids: list[int] = []
        while len(ids) < n:  # most words are one token or more: one pass almost always suffices
            words = " ".join(rng.choice(WORDS) for _ in range(n - len(ids) + 1))
            ids.extend(self.tok(" " + words, add_special_tokens=False)["input_ids"])
        return str(self.tok.decode(ids[:n])).strip()

    def chat(self, messages: Sequence[dict[str, str]]) -> str:
        try:
            return render_chat(self.tok, [ChatMessage(role=m["role"], content=m["content"]) for m in messages])
        except NoChatTemplate:
            return WordText().chat(messages)


def served_text(model_path: Path | None) -> TokenizerText | WordText:
    """The served model's tokenizer when it is a local checkpoint; whitespace words otherwise."""
    if model_path is None or not (model_path / "tokenizer_config.json").is_file():
        return WordText()
    from transformers import AutoTokenizer

    return TokenizerText(AutoTokenizer.from_pretrained(model_path, local_files_only=True))


def conversations_needed(spec: LoadSpec) -> int:
    """Generated conversations to write: what the longest load can start (reused past that)."""
    if spec.mode == LoadMode.open and spec.rate is not None:
        return min(100_000, math.ceil(spec.rate * spec.deadline_s * 1.2) + 16)
    return min(100_000, max(64, spec.users * 32))


def workload_spec(
    config: Pipeline, spec: LoadSpec, out: Path, resolve: Callable[[str], Path], model_path: Path | None
) -> LoadSpec:
    """``spec`` with the workloads' conversations, written to ``out/conversations.jsonl``: each
    labelled with its kind, several kinds interleaved one by one (a closed loop's users then take
    them in turn; an open loop starts a trace's at their own times, the others at ``load.rate``)."""
    if not config.load.workloads:
        return spec
    text = served_text(model_path)
    built = []
    for i, w in enumerate(config.load.workloads):
        b = Build(
            w,
            resolve,
            text,
            conversations_needed(spec),
            spec.seed + i,
            config.load.trace_speed,
            (spec.max_new_tokens, spec.max_new_tokens_max),
        )
        built.append([with_label(c, "workload", w.kind.value) for c in WORKLOADS[w.kind].build(b)])
    out.mkdir(parents=True, exist_ok=True)
    path = out / "conversations.jsonl"
    write_conversations(path, interleave(built))
    return dataclasses.replace(spec, workload=str(path))


def with_label(c: Conversation, key: str, value: str) -> Conversation:
    return dataclasses.replace(c, turns=tuple(dataclasses.replace(t, labels={**t.labels, key: value}) for t in c.turns))


def interleave(lists: Sequence[Sequence[Conversation]]) -> list[Conversation]:
    """One from each list in turn, until all are used: [a1, b1, a2, b2, b3]."""
    out: list[Conversation] = []
    for row in itertools.zip_longest(*lists):
        out.extend(c for c in row if c is not None)
    return out


def class_results(
    config: Pipeline, records: list[dict[str, Any]], warmup_s: float, end_s: float
) -> tuple[tuple[ClassFigures, ...], Series]:
    """Per-class figures of the window, and the samples of every gate scoped by ``where``."""
    figures = tuple(class_figures(records, warmup_s, end_s)) if config.load.workloads else ()
    series: Series = {
        m.series_key: scoped_series(records, warmup_s, end_s, m.name, m.where) for m in config.gates.metrics if m.where
    }
    return figures, series
