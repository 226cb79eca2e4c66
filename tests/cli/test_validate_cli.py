"""``gates validate``: preflight without building or serving, and which gates can reach a verdict."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from gates.artifacts import ArtifactStore
from gates.config import load_pipeline
from gates.context import RunContext
from gates.stages.preflight import PreflightStage

REPO = Path(__file__).resolve().parents[2]
SHORT = """name: short
model:
  source: builtin:tiny-llama
golden:
  suites: [golden_prompts/demo.jsonl]
load:
  users: 1
  duration_s: 10
  max_new_tokens: 16
"""


def validate(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GATES_LEDGER": str(cwd / "ledger.sqlite"), "GATES_ARTIFACTS": str(cwd / "artifacts")}
    return subprocess.run(
        [sys.executable, "-m", "gates.cli", "validate", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env=env,
    )


def test_the_demo_is_valid_and_every_gate_can_reach_a_verdict(tmp_path: Path) -> None:
    shutil.copytree(REPO / "pipelines", tmp_path / "pipelines")
    shutil.copytree(REPO / "golden_prompts", tmp_path / "golden_prompts")
    proc = validate(tmp_path, "demo")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("pipelines/demo.yaml: valid (28 golden prompts")
    # two operating points: 8 users, then one request in flight per arm (on to max_duration_s until 40)
    assert (
        "  load, throughput point: ~96 requests per arm expected (rough model, no run measured yet: 8 users" in lines[1]
    )
    assert "    latency_p95_ratio: needs 40 per arm: can reach a verdict" in lines
    assert (
        "  load, latency point: ~40 requests per arm expected (rough model, no run measured yet: 1 user " in proc.stdout
    )
    assert "    latency_p95_ratio@latency: needs 40 per arm: can reach a verdict" in lines
    assert "warning" not in proc.stdout
    assert not (tmp_path / "ledger.sqlite").exists() and not (tmp_path / "artifacts" / "runs").exists()


def test_a_short_load_is_named_before_any_run_and_a_bad_file_does_not_hide_it(tmp_path: Path) -> None:
    shutil.copytree(REPO / "golden_prompts", tmp_path / "golden_prompts")
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "pipelines" / "short.yaml").write_text(SHORT)
    (tmp_path / "pipelines" / "bad.yaml").write_text(
        SHORT.replace("name: short", "name: bad").replace("users: 1", "users: many")
    )
    proc = validate(tmp_path, "pipelines/bad.yaml", "short")
    assert proc.returncode == 2
    assert proc.stderr.count("load.users") == 1 and proc.stderr.startswith("gates: error: pipelines/bad.yaml:")
    assert "    metric latency_ms: needs 30 per arm: too few: no verdict expected" in proc.stdout
    (warning,) = [line for line in proc.stdout.splitlines() if "warning:" in line]
    assert "~3 requests per arm expected (rough model" in warning
    assert warning.endswith(
        "set load.max_duration_s to ~100 (past load.duration_s the load goes on until every gate has its requests)"
    )


def test_a_run_says_the_same_at_preflight(tmp_path: Path) -> None:
    shutil.copytree(REPO / "golden_prompts", tmp_path / "golden_prompts")
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "pipelines" / "short.yaml").write_text(SHORT)
    said: list[str] = []
    pf = load_pipeline(tmp_path / "pipelines" / "short.yaml")
    PreflightStage().run(RunContext(pf, ArtifactStore(tmp_path / "artifacts"), tmp_path / "run", "r", said.append))
    assert any(line.startswith("warning: ~3 requests per arm expected") for line in said), said


def test_a_bad_workload_file_is_exit_2_naming_file_line_and_key(tmp_path: Path) -> None:
    shutil.copytree(REPO / "golden_prompts", tmp_path / "golden_prompts")
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "trace.jsonl").write_text(
        '{"at_s": 0, "input_tokens": 5, "output_tokens": 2}\n{"at_s": -1, "input_tokens": 5, "output_tokens": 2}\n'
    )
    (tmp_path / "pipelines" / "w.yaml").write_text(
        SHORT.replace("  users: 1\n", "  mode: open\n  workload: {kind: trace, file: trace.jsonl}\n")
    )
    proc = validate(tmp_path, "pipelines/w.yaml")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "trace.jsonl:2: at_s: must not be negative (-1)" in proc.stdout + proc.stderr
