"""One CLI grammar (issue 31 item 5): PIPELINE is a file or an unambiguous name for every command,
refusals exit non-zero with a documented code, each error is printed once and plain."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gates.errors import ExitCode
from gates.ledger import CanaryState, Ledger

REPO = Path(__file__).resolve().parents[2]
KSERVE = ("kserve", "ml/demo/s3://b/demo", None, "s3://b/demo")


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    """A consumer repository: the demo pipeline approved by rita, a kubectl that records what it applies."""
    root = tmp_path / "repo"
    (root / "pipelines").mkdir(parents=True)
    shutil.copytree(REPO / "golden_prompts", root / "golden_prompts")
    text = (REPO / "pipelines" / "demo.yaml").read_text().replace('["@org/release-managers"]', '["rita"]')
    (root / "pipelines" / "demo.yaml").write_text(text)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    kubectl = bin_dir / "kubectl"  # no cluster here: a KServe target's weight change is recorded
    kubectl.write_text(f'#!/bin/sh\ncp "$3" {tmp_path}/applied.yaml\necho "inferenceservice configured"\n')
    kubectl.chmod(kubectl.stat().st_mode | stat.S_IEXEC)
    return root


def gates(repo: Path, *args: str, actor: str = "rita") -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PATH": f"{repo.parent / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "GATES_LEDGER": str(repo.parent / "ledger.sqlite"),
        "GATES_ARTIFACTS": str(repo.parent / "artifacts"),
        "GITHUB_ACTOR": actor,
    }
    env.pop("GITHUB_ACTIONS", None)
    return subprocess.run(
        [sys.executable, "-m", "gates.cli", *args], capture_output=True, text=True, timeout=120, cwd=repo, env=env
    )


def deploy(repo: Path, weight: int = 10) -> Ledger:
    ledger = Ledger(str(repo.parent / "ledger.sqlite"))
    ledger.set_canary(CanaryState("demo", *KSERVE, weight, time.time(), "d" * 64), "ops", "canary_deploy")
    return ledger


def test_an_error_is_printed_once_and_plain(repo: Path) -> None:
    """It was printed three times (progress, the PR reply meant for Markdown, the exit message)."""
    proc = gates(repo, "promote", "pipelines/demo.yaml")
    assert proc.returncode == ExitCode.BAD_INPUT, proc.stderr
    out = proc.stdout + proc.stderr
    assert out.count("has no canary deployment recorded") == 1, out
    assert "&#39;" not in out and "'demo'" in out


@pytest.mark.parametrize("command", [["promote"], ["rollback"], ["canary", "set", "--weight", "50"]])
def test_an_unauthorized_actor_exits_not_authorized_and_is_recorded(repo: Path, command: list[str]) -> None:
    ledger = deploy(repo)
    proc = gates(repo, *command, "demo", actor="mallory")
    assert proc.returncode == ExitCode.NOT_AUTHORIZED == 4, proc.stderr
    assert "mallory is not in promotion.approvers" in proc.stderr
    assert (proc.stdout + proc.stderr).count("not in promotion.approvers") == 1
    assert ledger.canary("demo").weight == 10  # type: ignore[union-attr]
    assert ledger.history("demo")[-1]["action"].endswith("_denied")


def test_canary_set_moves_the_recorded_target_and_records_who(repo: Path) -> None:
    ledger = deploy(repo)
    proc = gates(repo, "canary", "set", "pipelines/demo.yaml", "--weight", "25")
    assert proc.returncode == 0, proc.stderr
    assert "demo: canary at 25% on kserve" in proc.stdout
    assert ledger.canary("demo").weight == 25  # type: ignore[union-attr]
    last = ledger.history("demo")[-1]
    assert (last["action"], last["actor"], last["weight"]) == ("canary_set", "rita", 25)


def test_recheck_exits_0_when_nothing_is_in_progress(repo: Path) -> None:
    """After a rollback a scheduled re-check exited 1 forever; a pipeline never deployed is not an error."""
    assert gates(repo, "recheck", "demo").returncode == 0
    deploy(repo)
    rolled = gates(repo, "rollback", "demo")
    assert rolled.returncode == 0 and "rolled back" in rolled.stdout, rolled.stderr
    for _ in range(2):
        proc = gates(repo, "recheck", "demo")
        assert proc.returncode == 0, proc.stderr
        assert "no promotion in progress (rolled_back)" in proc.stdout


@pytest.mark.parametrize(
    "command",
    [["run"], ["promote"], ["rollback"], ["recheck"], ["canary", "set", "--weight", "5"], ["history"]],
)
def test_every_command_refuses_an_unknown_or_ambiguous_pipeline_naming_the_candidates(
    repo: Path, command: list[str]
) -> None:
    (repo / "pipelines" / "x.yaml").write_text(
        (repo / "pipelines" / "demo.yaml").read_text().replace("name: demo", "name: y")
    )
    (repo / "pipelines" / "y.yaml").write_text(
        (repo / "pipelines" / "demo.yaml").read_text().replace("name: demo", "name: z")
    )
    unknown = gates(repo, *command, "nosuch")
    assert unknown.returncode == 2, unknown.stderr
    assert "'nosuch': no pipeline file of that name" in unknown.stderr and "demo, y, z" in unknown.stderr
    ambiguous = gates(repo, *command, "y")  # x.yaml declares name y; y.yaml is named y
    assert ambiguous.returncode == 2 and "'y' is ambiguous" in ambiguous.stderr, ambiguous.stderr
    missing = gates(repo, *command, "pipelines/demo")  # a path is never looked up as a name
    assert missing.returncode == 2 and "pipelines/demo: no such pipeline file" in missing.stderr, missing.stderr
    assert not (repo.parent / "ledger.sqlite").exists()  # refused before the ledger is opened


def test_a_name_and_its_path_are_the_same_pipeline(repo: Path) -> None:
    """`canary set NAME` and `promote PATH` used to disagree: a path was looked up as a name."""
    deploy(repo)
    assert gates(repo, "canary", "set", "demo", "--weight", "15").returncode == 0
    assert gates(repo, "canary", "set", "pipelines/demo.yaml", "--weight", "20").returncode == 0
    moves = [h["weight"] for h in Ledger(str(repo.parent / "ledger.sqlite")).history("demo")]
    assert moves[-2:] == [15, 20]


def test_history_has_headers_and_never_creates_a_ledger(repo: Path) -> None:
    ledger = repo.parent / "ledger.sqlite"
    none = gates(repo, "history")
    assert none.returncode == 0 and "there is no ledger at" in none.stdout and not ledger.exists()
    unknown = gates(repo, "history", "nosuch")
    assert unknown.returncode == 2 and "'nosuch'" in unknown.stderr and not ledger.exists()
    deploy(repo)
    shown = gates(repo, "history", "demo")
    assert shown.returncode == 0, shown.stderr
    header, row = shown.stdout.splitlines()[:2]
    assert header.split() == ["when", "(UTC)", "pipeline", "action", "from", "->", "to", "by", "details"]
    assert " demo " in row and "canary_deploy" in row and "weight=10" in row
    (repo / "pipelines" / "demo.yaml").unlink()  # a deleted pipeline's records are still shown by name
    assert "canary_deploy" in gates(repo, "history", "demo").stdout
