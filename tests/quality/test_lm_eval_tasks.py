"""An lm-evaluation-harness task with local data, scored through the real tritonserver."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from gates.errors import DataError
from gates.models.loader import load_model
from gates.quality.lm_eval_tasks import lm_eval_available, run_task, task_spec
from gates.quality.scoring import ChoiceItem, ChoiceRow, score_choice_item
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
