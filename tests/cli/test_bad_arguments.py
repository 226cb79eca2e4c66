"""Arguments that name no valid thing: exit 2 naming the argument, never an internal error or a guess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def gates(args: list[str], cwd: Path, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "GATES_LEDGER": str(cwd / "ledger.sqlite"), "GATES_ARTIFACTS": str(cwd / "art"), **env}
    return subprocess.run(
        [sys.executable, "-m", "gates.cli", *args], capture_output=True, text=True, timeout=timeout, cwd=cwd, env=full
    )


@pytest.mark.parametrize("port", ["70000", "-1", "65536"])
def test_serve_refuses_a_port_out_of_range(tmp_path: Path, port: str) -> None:
    try:  # before the fix it listened on port % 65536 and never returned
        proc = gates(["serve", "--port", port], tmp_path, timeout=20, GATES_WEBHOOK_SECRET="s")
    except subprocess.TimeoutExpired:
        pytest.fail(f"gates serve --port {port} kept running")
    assert proc.returncode == 2, proc.stderr
    assert "--port" in proc.stderr and "listening" not in proc.stdout


@pytest.mark.parametrize("verdict", ["MAYBE", None, ["PASS"]])
def test_publish_refuses_a_report_with_an_unknown_verdict(tmp_path: Path, verdict: object) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "report.json").write_text(json.dumps({"pipeline": "demo", "verdict": verdict, "reason": "r"}))
    (run / "report.md").write_text("report")
    env = {"GITHUB_TOKEN": "t", "GITHUB_REPOSITORY": "o/r", "GATES_PR_NUMBER": "1", "GATES_COMMIT_SHA": "a" * 40}
    proc = gates(["publish", str(run)], tmp_path, GITHUB_API_URL="http://127.0.0.1:9", **env)
    assert proc.returncode == 2, proc.stderr
    assert f"{run}/report.json" in proc.stderr and "verdict" in proc.stderr and "GitHub" not in proc.stderr


def test_publish_refuses_a_pipeline_name_no_config_could_have(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    bad = {"pipeline": "x --> <script>", "verdict": "PASS", "reason": "r"}
    (run / "report.json").write_text(json.dumps(bad))
    (run / "report.md").write_text("report")
    env = {"GITHUB_TOKEN": "t", "GITHUB_REPOSITORY": "o/r", "GATES_PR_NUMBER": "1"}
    proc = gates(["publish", str(run)], tmp_path, GITHUB_API_URL="http://127.0.0.1:9", **env)
    assert proc.returncode == 2 and "pipeline" in proc.stderr, proc.stderr


@pytest.mark.parametrize("command", ["promote", "rollback", "recheck"])
@pytest.mark.parametrize("target", ["/etc/passwd", "notes.txt", "pipelines", "missing.yaml"])
def test_promote_refuses_a_path_that_is_not_a_pipeline(tmp_path: Path, command: str, target: str) -> None:
    (tmp_path / "notes.txt").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (tmp_path / "pipelines").mkdir()
    proc = gates([command, target, "--repo-dir", str(tmp_path)], tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert target in proc.stderr and "internal error" not in proc.stderr


@pytest.mark.parametrize("where", ["/proc/1", "a-file", "/dev/null"])
def test_run_refuses_an_artifacts_root_it_cannot_write(project: Path, where: str) -> None:
    repo = Path(__file__).resolve().parents[2]
    (project / "pipelines" / "demo.yaml").write_text((repo / "pipelines" / "demo.yaml").read_text())
    (project / "a-file").write_text("")
    proc = gates(["run", "pipelines/demo.yaml", "--artifacts", where], project)
    assert proc.returncode == 2, proc.stderr
    assert "--artifacts" in proc.stderr and where in proc.stderr and "internal error" not in proc.stderr
