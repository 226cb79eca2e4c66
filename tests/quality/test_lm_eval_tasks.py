"""An lm-evaluation-harness task with local data, scored through the real tritonserver."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from gates.errors import DataError
from gates.models.loader import load_model
from gates.quality.lm_eval_tasks import lm_eval_available, run_task, task_spec
from gates.quality.scoring import ChoiceItem, ChoiceRow, encode_pair, score_choice_item
from gates.triton.client import TextModelClient
from gates.triton.repository import write_model
from gates.triton.server import TritonServer

ROWS = [
    {"question": "What do cats say?", "choices": ["meow", "moo", "quack"], "answer": 0},
    {"question": "Is the sea wet or dry?", "choices": ["wet", "dry"], "answer": 0},
    {"question": "Shall I compare thee to a summer's day?", "choices": ["yes", "no", "maybe"], "answer": 1},
    {"question": "How many legs has a dog?", "choices": ["four", "two"], "answer": 0},
]


def write_task(folder: Path, name: str = "gates_tiny_mc", output_type: str = "multiple_choice") -> Path:
    data = folder / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    task = folder / f"{name}.yaml"
    task.write_text(
        textwrap.dedent(
            f"""\
            task: {name}
            dataset_path: json
            dataset_kwargs:
              data_files:
                test: {data}
            test_split: test
            output_type: {output_type}
            doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
            doc_to_choice: "{{{{choices}}}}"
            doc_to_target: answer
            metric_list:
              - metric: acc
            """
        )
    )
    return task


def test_task_spec_checks_the_yaml(tmp_path: Path) -> None:
    assert task_spec(write_task(tmp_path)).name == "gates_tiny_mc"
    with pytest.raises(DataError, match="only multiple_choice and loglikelihood"):
        task_spec(write_task(tmp_path, "gen", "generate_until"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("dataset_path: json\n")
    with pytest.raises(DataError, match=r"bad.yaml: an lm-eval task YAML needs a 'task' name"):
        task_spec(bad)


@pytest.mark.integration
@pytest.mark.skipif(not lm_eval_available(), reason="lm-eval is not installed (pip install '.[lm-eval]')")
def test_lm_eval_task_through_tritonserver_matches_our_scoring(
    tmp_path: Path, tiny_model: Path, no_leaked_servers: None
) -> None:
    spec = task_spec(write_task(tmp_path))
    _, tok = load_model(tiny_model)
    repo = tmp_path / "models"
    write_model(repo, "baseline", tiny_model)
    with TritonServer(repo, tmp_path) as server:
        server.load_model("baseline")
        client = TextModelClient(server.grpc_url)
        try:
            samples = run_task(spec, client, "baseline", tok)
            ours = [
                score_choice_item(client, "baseline", tok, ChoiceItem("t", i, ChoiceRow(id=str(i), **r)))
                for i, r in enumerate(ROWS)
            ]
        finally:
            client.close()
    assert samples.task == "gates_tiny_mc" and samples.doc_ids == (0, 1, 2, 3)
    # lm-eval's context/continuation split and ours agree, so its per-document accuracy is ours
    assert samples.correct == tuple(s.correct for s in ours)


# -- issue 24: requests split as lm-eval splits them (its _encode_pair) ---------------------------
SPACED_ROWS = [
    {"question": "What do cats say?", "choices": ["meow", "moo", "quack"], "answer": 0},
    {"question": "Is the sea wet or dry?", "choices": ["wet", "dry"], "answer": 0},
    {"question": "Which is a colour?", "choices": ["red", "run", "rain"], "answer": 0},
    {"question": "How many legs has a dog?", "choices": ["four", "two"], "answer": 0},
    {"question": "Where do fish live?", "choices": ["water", "trees", "sand"], "answer": 0},
    {"question": "What is hot?", "choices": ["fire", "ice"], "answer": 0},
    {"question": "Four score and seven years", "choices": ["ago", "hence", "later"], "answer": 0},
    {"question": "The people shall", "choices": ["not perish", "be", "go"], "answer": 0},
]


def write_spaced_task(folder: Path) -> Path:
    """Contexts that end with a space ("Answer: ") and choices without one: lm-eval moves the
    context's trailing space onto the continuation before it tokenizes."""
    data = folder / "spaced.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in SPACED_ROWS))
    task = folder / "gates_spaced_mc.yaml"
    task.write_text(
        textwrap.dedent(
            f"""\
            task: gates_spaced_mc
            dataset_path: json
            dataset_kwargs:
              data_files:
                test: {data}
            test_split: test
            output_type: multiple_choice
            doc_to_text: "Question: {{{{question}}}}\\nAnswer: "
            target_delimiter: ""
            doc_to_choice: "{{{{choices}}}}"
            doc_to_target: answer
            metric_list:
              - metric: acc
            """
        )
    )
    return task


@pytest.fixture(scope="module")
def small_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from gates.testing.checkpoints import build_checkpoint

    return build_checkpoint("llama", tmp_path_factory.mktemp("lm") / "llama", steps=20, seed=3)


@pytest.mark.skipif(not lm_eval_available(), reason="lm-eval is not installed (pip install '.[lm-eval]')")
def test_requests_are_split_as_lm_eval_splits_them(small_llama: Path) -> None:
    """lm-eval's own HF backend (``_encode_pair``) and gates agree on the context sent and the
    continuation's tokens, trailing spaces included."""
    from lm_eval.models.huggingface import HFLM

    hf = HFLM(pretrained=str(small_llama), device="cpu", batch_size=1)
    _, tok = load_model(small_llama)
    pairs = [
        ("Question: What do cats say?\nAnswer: ", "meow"),
        ("Question: What do cats say?\nAnswer:", " meow"),
        ("Answer:  ", "two spaces"),
        ("Four score and seven years", " ago"),
        ("tabs\t", "and more"),
        ("a ", " b"),
    ]
    for context, continuation in pairs:
        sent, ids = encode_pair(tok, context, continuation)
        context_enc, continuation_enc = hf._encode_pair(context, continuation)
        assert (list(tok(sent)["input_ids"]), ids) == (context_enc, continuation_enc), (context, continuation)


@pytest.mark.integration
@pytest.mark.skipif(not lm_eval_available(), reason="lm-eval is not installed (pip install '.[lm-eval]')")
def test_spaced_task_through_tritonserver_agrees_with_lm_eval_hf_backend(
    tmp_path: Path, small_llama: Path, no_leaked_servers: None
) -> None:
    """An 80-item task with contexts ending in a space differed from lm-eval on 8 documents."""
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from gates.quality.lm_eval_tasks import _served_lm_class

    spec = task_spec(write_spaced_task(tmp_path))

    def evaluate(lm: object) -> list[dict[str, object]]:
        manager = TaskManager(include_path=str(spec.path.parent), include_defaults=False)
        out = simple_evaluate(
            model=lm, tasks=[spec.name], task_manager=manager, log_samples=True, bootstrap_iters=0, random_seed=0
        )
        assert out is not None
        return sorted(out["samples"][spec.name], key=lambda s: int(s["doc_id"]))  # type: ignore[no-any-return]

    reference = evaluate(HFLM(pretrained=str(small_llama), device="cpu", batch_size=1))
    _, tok = load_model(small_llama)
    repo = tmp_path / "models"
    write_model(repo, "baseline", small_llama)
    with TritonServer(repo, tmp_path) as server:
        server.load_model("baseline")
        client = TextModelClient(server.grpc_url)
        try:
            served = evaluate(_served_lm_class()(client, "baseline", tok))
            samples = run_task(spec, client, "baseline", tok)
        finally:
            client.close()
    ref_ll = [[float(r[0]) for r in s["filtered_resps"]] for s in reference]  # type: ignore[attr-defined]
    our_ll = [[float(r[0]) for r in s["filtered_resps"]] for s in served]  # type: ignore[attr-defined]
    np.testing.assert_allclose(np.concatenate(our_ll), np.concatenate(ref_ll), atol=2e-3)
    reference_acc = tuple(bool(float(s["acc"]) > 0.5) for s in reference)  # type: ignore[arg-type]
    assert samples.correct == reference_acc  # every document agrees
