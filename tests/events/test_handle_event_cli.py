"""``gates handle-event``: dry runs, exit codes, changed files from git."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from gates.testing import webhooks_dir

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = webhooks_dir() / "examples"


def gates(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gates.cli", *args], capture_output=True, text=True, timeout=120, cwd=cwd
    )


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout.strip()


def make_repo(tmp_path: Path) -> tuple[Path, str, str]:
    repo = tmp_path / "repo"
    (repo / "pipelines").mkdir(parents=True)
    shutil.copytree(REPO / "golden_prompts", repo / "golden_prompts")
    shutil.copy(REPO / "pipelines" / "demo.yaml", repo / "pipelines" / "demo.yaml")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qam", "base", "--allow-empty")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "base")
    base = git(repo, "rev-parse", "HEAD")
    shutil.copy(REPO / "pipelines" / "int8-cpu.yaml", repo / "pipelines" / "int8-cpu.yaml")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "add int8-cpu")
    return repo, base, git(repo, "rev-parse", "HEAD")


def test_dry_run_lists_actions_from_the_git_diff(tmp_path: Path) -> None:
    repo, base, head = make_repo(tmp_path)
    payload = json.loads((EXAMPLES / "pull_request" / "synchronize.payload.json").read_text())
    payload["pull_request"]["base"]["sha"], payload["pull_request"]["head"]["sha"] = base, head
    (tmp_path / "e.json").write_text(json.dumps(payload))
    proc = gates(["handle-event", "--name", "pull_request", "--payload", str(tmp_path / "e.json"), "--dry-run"], repo)
    assert proc.returncode == 0, proc.stderr
    assert "would run pipelines/int8-cpu.yaml PR #2" in proc.stdout and "demo.yaml" not in proc.stdout


def test_no_action_is_exit_0_and_malformed_is_exit_2(tmp_path: Path) -> None:
    repo, _, _ = make_repo(tmp_path)
    none = EXAMPLES / "issue_comment" / "edited.payload.json"
    proc = gates(["handle-event", "--name", "issue_comment", "--payload", str(none)], repo)
    assert proc.returncode == 0 and "only new comments are commands" in proc.stdout
    (tmp_path / "bad.json").write_text('{"action": "opened"')
    proc = gates(["handle-event", "--name", "pull_request", "--payload", str(tmp_path / "bad.json")], repo)
    assert proc.returncode == 2 and "bad.json: the event payload is not JSON" in proc.stderr
    (tmp_path / "hollow.json").write_text('{"action": "opened", "pull_request": {"draft": false}}')
    proc = gates(["handle-event", "--name", "pull_request", "--payload", str(tmp_path / "hollow.json")], repo)
    assert proc.returncode == 2 and "hollow.json: event payload has no 'pull_request.base.sha'" in proc.stderr
    proc = gates(["handle-event", "--name", "push", "--payload", str(tmp_path / "missing.json")], repo)
    assert proc.returncode == 2 and "cannot read the event payload" in proc.stderr


def test_unknown_commits_fail_closed(tmp_path: Path) -> None:
    repo, base, _ = make_repo(tmp_path)
    payload = json.loads((EXAMPLES / "pull_request" / "opened.payload.json").read_text())
    payload["pull_request"]["base"]["sha"], payload["pull_request"]["head"]["sha"] = base, "f" * 40
    (tmp_path / "e.json").write_text(json.dumps(payload))
    proc = gates(["handle-event", "--name", "pull_request", "--payload", str(tmp_path / "e.json"), "--dry-run"], repo)
    assert proc.returncode == 3 and "cannot list the files this pull request changes" in proc.stderr
    assert "command: git" in proc.stderr and "exit code: 128" in proc.stderr


def test_forged_base_sha_never_reaches_git_and_exits_2(tmp_path: Path) -> None:
    repo, _, head = make_repo(tmp_path)
    payload = json.loads((EXAMPLES / "pull_request" / "opened.payload.json").read_text())
    pwned = tmp_path / "pwned"
    payload["pull_request"]["base"]["sha"], payload["pull_request"]["head"]["sha"] = f"--output={pwned}", head
    (tmp_path / "e.json").write_text(json.dumps(payload))
    for cmd in (
        ["-m", "gates.cli", "handle-event", "--name", "pull_request", "--payload", str(tmp_path / "e.json")],
        ["-m", "gates.events.plan", "--name", "pull_request", "--payload", str(tmp_path / "e.json")],
    ):
        proc = subprocess.run([sys.executable, *cmd], capture_output=True, text=True, timeout=120, cwd=repo)
        assert proc.returncode == 2 and "is not a commit SHA" in proc.stderr, proc.stderr
    assert not pwned.exists()


def test_deeply_nested_payload_exits_2(tmp_path: Path) -> None:
    repo, _, _ = make_repo(tmp_path)
    (tmp_path / "deep.json").write_text('{"a": ' + "[" * 200_000 + "]" * 200_000 + "}")
    for cmd in (
        ["-m", "gates.cli", "handle-event", "--name", "push", "--payload", str(tmp_path / "deep.json")],
        ["-m", "gates.events.plan", "--name", "push", "--payload", str(tmp_path / "deep.json")],
    ):
        proc = subprocess.run([sys.executable, *cmd], capture_output=True, text=True, timeout=120, cwd=repo)
        assert proc.returncode == 2 and "nested too deeply" in proc.stderr, proc.stderr
