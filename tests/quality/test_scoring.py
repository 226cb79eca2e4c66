"""Multiple-choice and perplexity scoring: data files, tokenization, and through the real tritonserver."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from gates.config.schema import GatesSection
from gates.errors import DataError
from gates.judge.quality import perplexity_entry
from gates.models.loader import load_model
from gates.quality.scoring import (
    ChoiceItem,
    ChoiceRow,
    Document,
    choice_prompt,
    continuation_ids,
    load_documents,
    load_multiple_choice,
    score_choice_item,
    score_document,
    split_document,
)
from gates.triton.client import TextModelClient
from gates.triton.repository import write_model
from gates.triton.server import TritonServer

REPO = Path(__file__).resolve().parents[2]


def test_multiple_choice_file_errors_name_the_line(tmp_path: Path) -> None:
    good = {"id": "a", "question": "2 + 2?", "choices": ["3", "4"], "answer": 1}
    path = tmp_path / "mc.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps({**good, "id": "b", "answer": 2}) + "\n")
    with pytest.raises(DataError, match=r"mc.jsonl:2: .*answer 2 is not an index of the 2 choices"):
        load_multiple_choice(path, "mc")
    path.write_text(json.dumps(good) + "\n\n" + json.dumps(good) + "\n")
    with pytest.raises(DataError, match=r"mc.jsonl:3: duplicate id 'a' \(first on line 1\)"):
        load_multiple_choice(path, "mc")
    path.write_text(json.dumps({**good, "choice": ["x"]}) + "\n")
    with pytest.raises(DataError, match=r"mc.jsonl:1: at key 'choice': unknown key"):
        load_multiple_choice(path, "mc")


def test_documents_are_paragraphs_with_their_first_line(tmp_path: Path) -> None:
    path = tmp_path / "held.txt"
    path.write_text("\nOne two\nthree.\n\n\nFour five six.\n")
    docs = load_documents(path, "held")
    assert [(d.line, d.text) for d in docs] == [(2, "One two three."), (6, "Four five six.")]
    path.write_text("Alone\n\nfine text here\n")
    with pytest.raises(DataError, match=r"held.txt:1: a document needs at least two words"):
        load_documents(path, "held")


def test_repo_suites_load() -> None:
    items = load_multiple_choice(REPO / "golden_prompts" / "smollm2-choice.jsonl", "mc")
    assert len(items) >= 40 and len({i.row.answer for i in items}) > 1  # answers are not all in one slot
    assert len(load_documents(REPO / "golden_prompts" / "smollm2-heldout.txt", "held")) >= 10


def test_continuation_ids_extend_the_context(tiny_model: Path) -> None:
    _, tok = load_model(tiny_model)
    context, conts = choice_prompt(
        ChoiceRow(id="x", question="Which is bigger?", choices=["a cat", "a whale"], answer=1)
    )
    assert context.endswith("Answer:") and conts == [" a cat", " a whale"]
    for c in conts:
        ids = continuation_ids(tok, context, c)
        assert ids and list(tok(context)["input_ids"]) + ids == list(tok(context + c)["input_ids"])


def _reference_logprob(model: torch.nn.Module, tok: object, context: str, ids: list[int]) -> float:
    ctx = list(tok(context)["input_ids"])  # type: ignore[operator]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ctx + ids])).logits[0].float()
    lp = torch.log_softmax(logits, -1)
    return float(sum(lp[len(ctx) - 1 + k, t] for k, t in enumerate(ids)))


@pytest.mark.integration
def test_choices_and_perplexity_through_tritonserver(tmp_path: Path, tiny_model: Path, no_leaked_servers: None) -> None:
    model, tok = load_model(tiny_model)
    rows = [
        ChoiceRow(id="q1", question="What do cats say?", choices=["meow", "moo", "quack"], answer=0),
        ChoiceRow(id="q2", question="Is the sea wet or dry?", choices=["wet", "dry"], answer=0),
    ]
    docs = [
        Document("held", 1, "Shall I compare thee to a summer's day? Thou art more lovely and more temperate."),
        Document(
            "held", 3, "Rough winds do shake the darling buds of May, and summer's lease hath all too short a date."
        ),
    ]
    repo = tmp_path / "models"
    write_model(repo, "baseline", tiny_model)
    with TritonServer(repo, tmp_path) as server:
        server.load_model("baseline")
        client = TextModelClient(server.grpc_url)
        try:
            scores = [
                score_choice_item(client, "baseline", tok, ChoiceItem("mc", i + 1, r)) for i, r in enumerate(rows)
            ]
            doc_scores = [score_document(client, "baseline", tok, d, max_tokens=12) for d in docs]
        finally:
            client.close()
    for row, s in zip(rows, scores, strict=True):
        context, conts = choice_prompt(row)
        want = [_reference_logprob(model, tok, context, continuation_ids(tok, context, c)) for c in conts]
        np.testing.assert_allclose(s.logprobs, want, atol=1e-4)
        assert s.picked == int(np.argmax(want)) and s.correct == (s.picked == row.answer)
    for d, s in zip(docs, doc_scores, strict=True):
        context, ids, nbytes = split_document(tok, d.text, 12)
        assert s.tokens == len(ids) == 12 and s.bytes == nbytes > 0
        assert s.nll == pytest.approx(-_reference_logprob(model, tok, context, ids), abs=1e-3)
    # the same arm against itself: no increase, but two documents are too few to certify it (an
    # interval's coverage is not known to hold below 10 documents: INCONCLUSIVE, never PASS)
    nll = [s.nll for s in doc_scores]
    entry = perplexity_entry(nll, nll, [s.tokens for s in doc_scores], GatesSection(perplexity_increase_max=0.01))
    assert entry.status == "inconclusive" and "fewer than 10 documents" in entry.reason
    assert entry.baseline is not None
    assert entry.baseline.estimate == pytest.approx(math.exp(sum(nll) / 24))
