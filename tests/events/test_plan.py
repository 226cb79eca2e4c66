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
