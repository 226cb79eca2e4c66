from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from gates.github.actions import error_annotation, write_outputs, write_summary


def test_annotation_escapes_data_and_properties() -> None:
    line = error_annotation("bad: 100%\nnext", file="pipelines/a,b.yaml", line=9, title="gates: ConfigError")
    assert line == "::error file=pipelines/a%2Cb.yaml,line=9,title=gates%3A ConfigError::bad: 100%25%0Anext"
    assert error_annotation("x") == "::error::x"


def test_summary_and_outputs(tmp_path: Path) -> None:
    env = {"GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"), "GITHUB_OUTPUT": str(tmp_path / "out")}
    assert write_summary(env, "## PASS\n") and write_outputs(env, {"verdict": "PASS", "multi": "a\nb"})
    assert (tmp_path / "summary.md").read_text() == "## PASS\n"
    assert (tmp_path / "out").read_text() == "verdict=PASS\nmulti<<GATES_EOF\na\nb\nGATES_EOF\n"
    assert not write_summary({}, "x") and not write_outputs({}, {"a": "b"})


def test_config_error_in_actions_is_annotated(write_pipeline: Callable[..., Path]) -> None:
    path = write_pipeline("name: x\nmodel:\n  source: builtin:tiny-llama\n  revison: 1\ngolden:\n  suites: [a.jsonl]\n")
    env = {**os.environ, "GITHUB_ACTIONS": "true"}
    proc = subprocess.run(
        [sys.executable, "-m", "gates.cli", "run", str(path)], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 2
    assert f"::error file={path},line=4,title=gates%3A ConfigError::{path}:4: invalid pipeline config%0A" in proc.stdout
