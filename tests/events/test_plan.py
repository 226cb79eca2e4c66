"""The plan job parses every pipeline of the checkout: a hostile one costs it nothing."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from gates.events.plan import data_index

LAUGHS = "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 10) if p else ', '.join(['lol'] * 10)}]\n"
    for p, c in zip(["", "a", "b", "c", "d", "e", "f", "g", "h"], "abcdefghi", strict=True)
)


def test_a_pipeline_that_expands_without_bound_is_skipped_quickly(project: Path) -> None:
    (project / "pipelines" / "laughs.yaml").write_text(LAUGHS)
    (project / "pipelines" / "deep.yaml").write_text("x: " + "[" * 100_000 + "]" * 100_000 + "\n")
    (project / "pipelines" / "ok.yaml").write_text(
        "name: ok\nmodel:\n  source: builtin:tiny-llama\ngolden:\n  suites: [golden_prompts/demo.jsonl]\n"
    )
    started = time.monotonic()
    index = data_index(project)
    assert index == {"golden_prompts/demo.jsonl": ["pipelines/ok.yaml"]}
    assert time.monotonic() - started < 10


def test_the_plan_job_finishes_on_a_hostile_checkout(project: Path, tmp_path: Path) -> None:
    (project / "pipelines" / "laughs.yaml").write_text(LAUGHS)
    payload = tmp_path / "e.json"
    payload.write_text(
        json.dumps({"inputs": {"pipeline": "laughs"}, "repository": {"full_name": "o/r"}, "sender": {"login": "a"}})
    )
    proc = subprocess.run(
        [sys.executable, "-m", "gates.events.plan", "--name", "workflow_dispatch", "--payload", str(payload),
         "--repo-dir", str(project)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    # listed, so its run job fails with the config error where the author sees it
    assert proc.returncode == 0 and json.loads(proc.stdout) == {"pipeline": ["pipelines/laughs.yaml"]}, proc.stderr


def test_a_pr_touching_only_an_lm_eval_data_file_plans_the_pipeline(project: Path) -> None:
    """Issue 24: the planner watched the task YAMLs, not the data they read: editing only the data ran no gate."""
    from gates.events.routing import affected_pipelines

    tasks = project / "tasks"
    (tasks / "data").mkdir(parents=True)
    (tasks / "data" / "test.jsonl").write_text('{"q": "x"}\n')
    (tasks / "data" / "val.jsonl").write_text('{"q": "y"}\n')
    (tasks / "utils.py").write_text("def doc_to_text(doc):\n    return doc['q']\n")
    (tasks / "base.yaml").write_text("output_type: multiple_choice\ndoc_to_target: 0\n")
    (tasks / "mc.yaml").write_text(
        "task: mc\ninclude: base.yaml\ndataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: tasks/data/test.jsonl\n    validation: [{tasks}/data/val.jsonl]\n"
        "doc_to_text: !function utils.doc_to_text\n"
    )
    (project / "pipelines" / "p.yaml").write_text(
        "name: p\nmodel:\n  source: builtin:tiny-llama\ngolden:\n  suites: [golden_prompts/demo.jsonl]\n"
        "  lm_eval: [tasks/mc.yaml]\n"
    )
    index = data_index(project)
    for read in ("tasks/mc.yaml", "tasks/data/test.jsonl", "tasks/data/val.jsonl", "tasks/utils.py", "tasks/base.yaml"):
        assert index.get(read) == ["pipelines/p.yaml"], (read, index)
    assert affected_pipelines(["tasks/data/test.jsonl"], index) == ["pipelines/p.yaml"]


def test_a_local_model_checkpoint_in_the_repo_is_watched(project: Path) -> None:
    (project / "models" / "ckpt").mkdir(parents=True)
    (project / "models" / "ckpt" / "config.json").write_text("{}")
    (project / "models" / "ckpt" / "model.safetensors").write_bytes(b"w")
    (project / "pipelines" / "p.yaml").write_text(
        "name: p\nmodel:\n  source: models/ckpt\ngolden:\n  suites: [golden_prompts/demo.jsonl]\n"
    )
    index = data_index(project)
    assert index.get("models/ckpt/model.safetensors") == ["pipelines/p.yaml"], index
    assert index.get("models/ckpt/config.json") == ["pipelines/p.yaml"]
