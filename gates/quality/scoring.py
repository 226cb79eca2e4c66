"""Log-likelihood scoring through a served model: multiple-choice items and held-out text.

The served model scores a continuation by teacher forcing: ``PROMPT`` is the context,
``FORCED_IDS`` the continuation's tokens and ``LOGPROB_IDS`` the same tokens (one per position),
so ``SELECTED_LOGPROBS`` holds log p(token | context, earlier tokens). Continuations are
tokenized here with the base model's tokenizer the way lm-evaluation-harness does it: the
context and the whole string are encoded and the continuation is what the whole adds, so a
choice's first token sees the same merge with the preceding space as in running text.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from gates.errors import DataError
from gates.quality.datafile import read_data_file
from gates.quality.golden import _typed, read_jsonl
from gates.triton.client import TextModelClient

MAX_CHOICES = 26


class ChoiceRow(BaseModel):
    """One multiple-choice item: the question, its choices, and the index of the right one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    question: str = Field(min_length=1, max_length=8000)
    choices: list[str] = Field(min_length=2, max_length=MAX_CHOICES)
    answer: int = Field(ge=0)
    tags: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _answer_in_range(self) -> ChoiceRow:
        if self.answer >= len(self.choices):
            raise ValueError(f"answer {self.answer} is not an index of the {len(self.choices)} choices")
        if any(not c.strip() for c in self.choices):
            raise ValueError("a choice is empty")
        return self


@dataclasses.dataclass(frozen=True)
class ChoiceItem:
    suite: str
    line: int
    row: ChoiceRow


@dataclasses.dataclass(frozen=True)
class Document:
    source: str
    line: int  # first line of the document in its file
    text: str


def load_multiple_choice(path: Path, label: str) -> list[ChoiceItem]:
    rows, lines = read_jsonl(path)
    typed: list[ChoiceRow] = _typed(path, rows, lines, ChoiceRow)
    seen: dict[str, int] = {}
    for r, n in zip(typed, lines, strict=True):
        if r.id in seen:
            raise DataError(f"{path}:{n}: duplicate id {r.id!r} (first on line {seen[r.id]})")
        seen[r.id] = n
    return [ChoiceItem(label, n, r) for r, n in zip(typed, lines, strict=True)]


def load_documents(path: Path, label: str) -> list[Document]:
    """Documents of a held-out text file: paragraphs separated by blank lines."""
    try:  # the golden suites' checks: a regular file, bounded
        text = read_data_file(path).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: cannot read: {exc}") from None
    docs: list[Document] = []
    start, buf = 0, list[str]()
    for n, raw in enumerate([*text.splitlines(), ""], start=1):
        if raw.strip():
            if not buf:
                start = n
            buf.append(raw.strip())
        elif buf:
            doc = " ".join(buf)
            if len(doc.split()) < 2:
                raise DataError(f"{path}:{start}: a document needs at least two words (the first is context)")
            docs.append(Document(label, start, doc))
            buf = []
    if not docs:
        raise DataError(f"{path}: no documents (paragraphs separated by blank lines)")
    return docs


def continuation_ids(tokenizer: Any, context: str, continuation: str) -> list[int]:
    """Token ids ``continuation`` adds to ``context`` (as lm-evaluation-harness splits them)."""
    ctx = list(tokenizer(context)["input_ids"])
    whole = list(tokenizer(context + continuation)["input_ids"])
    if whole[: len(ctx)] == ctx and len(whole) > len(ctx):
        return whole[len(ctx) :]
    # the boundary merged across: score the continuation tokenized on its own
    return list(tokenizer(continuation, add_special_tokens=False)["input_ids"])


def score_continuation(client: TextModelClient, model: str, context: str, ids: Sequence[int]) -> float:
    """Summed log-probability of ``ids`` after ``context`` under the served ``model``."""
    forced = np.asarray(ids, dtype=np.int64)
    out = client.generate(model, context, len(ids), forced_ids=forced, logprob_ids=forced.reshape(-1, 1))
    selected = np.asarray(out.selected_logprobs, dtype=np.float64).reshape(-1)
    if selected.size != len(ids) or not np.isfinite(selected).all():
        raise DataError(f"model {model!r} returned {selected.size} log-probabilities for {len(ids)} tokens")
    return float(selected.sum())


def choice_prompt(row: ChoiceRow) -> tuple[str, list[str]]:
    """The context and the continuations scored: "Question: …\\nAnswer:" then " <choice>"."""
    return f"Question: {row.question.strip()}\nAnswer:", [" " + c.strip() for c in row.choices]


@dataclasses.dataclass(frozen=True)
class ChoiceScore:
    id: str
    logprobs: tuple[float, ...]  # per choice, summed over its tokens
    picked: int
    correct: bool


def score_choice_item(client: TextModelClient, model: str, tokenizer: Any, item: ChoiceItem) -> ChoiceScore:
    context, conts = choice_prompt(item.row)
    lps = tuple(score_continuation(client, model, context, continuation_ids(tokenizer, context, c)) for c in conts)
    picked = int(np.argmax(lps))  # ties go to the first choice, deterministically
    return ChoiceScore(item.row.id, lps, picked, picked == item.row.answer)


@dataclasses.dataclass(frozen=True)
class DocumentScore:
    source: str
    line: int
    nll: float  # nats, summed over the scored tokens
    tokens: int
    bytes: int  # UTF-8 bytes of the scored text (bits per byte = nll / ln 2 / bytes)


def split_document(tokenizer: Any, text: str, max_tokens: int) -> tuple[str, list[int], int]:
    """The first word is the context (the served model needs a prompt); the rest, cut at
    ``max_tokens`` tokens, is scored. Returns (context, token ids, scored bytes)."""
    first, rest = text.split(maxsplit=1)
    ids = continuation_ids(tokenizer, first, " " + rest)[:max_tokens]
    scored = tokenizer.decode(ids) if hasattr(tokenizer, "decode") else " " + rest
    return first, ids, len(str(scored).encode("utf-8"))


def score_document(
    client: TextModelClient, model: str, tokenizer: Any, doc: Document, max_tokens: int
) -> DocumentScore:
    context, ids, nbytes = split_document(tokenizer, doc.text, max_tokens)
    nll = -score_continuation(client, model, context, ids)
    return DocumentScore(doc.source, doc.line, nll, len(ids), nbytes)


def encode_pair(tokenizer: Any, context: str, continuation: str) -> tuple[str, list[int]]:
    """(context to send, continuation token ids) split as lm-evaluation-harness splits a request
    (``TemplateLM._encode_pair``): the context's trailing whitespace moves onto the continuation
    ("Answer: " + "Paris" is scored as "Answer:" + " Paris", the word with its space, never the
    bare word after a lone space token), then the continuation is what the whole adds to the
    context's tokens."""
    n_spaces = len(context) - len(context.rstrip())
    if 0 < n_spaces < len(context):  # a context of whitespace only is kept: the model needs a prompt
        context, continuation = context[:-n_spaces], context[-n_spaces:] + continuation
    ctx = list(tokenizer(context)["input_ids"])
    whole = list(tokenizer(context + continuation)["input_ids"])
    ids = whole[len(ctx) :]
    # nothing added (the continuation merged into the context's last token): scored on its own
    return context, ids or list(tokenizer(continuation, add_special_tokens=False)["input_ids"])
