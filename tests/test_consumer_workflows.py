"""A consumer repository's promotion and scheduled re-check (issue 31 item 1), run as the reusable
workflows run them: each job's ``run:`` script in bash, with the job's environment, in a repository
that holds only pipelines and golden data, `gates` on PATH as the installed release (the checkout's
package stands in for the wheel), and the local GitHub test server for replies and team membership.
No Triton here: the refusals and the re-check decisions happen before any serving.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from gates.ledger import CanaryState, Ledger, PromotionRecord
from gates.ledger.states import PromotionState
from gates.testing import webhooks_dir
from gates.testing.github_server import GitHubTestServer

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = REPO / ".github" / "workflows"
FULL_NAME, PR = "Codertocat/Hello-World", 2  # the repository of GitHub's example payloads


def job(workflow: str, name: str) -> dict[str, Any]:
    return dict(yaml.safe_load((WORKFLOWS / workflow).read_text())["jobs"][name])


def job_env(spec: dict[str, Any], values: dict[str, str]) -> dict[str, str]:
    """The job's env block with its ``${{ }}`` expressions given the values a caller would pass."""
    out = {}
    for key, expr in spec.get("env", {}).items():
        out[key] = values.get(key, "") if "${{" in str(expr) else str(expr)
    return out


@pytest.fixture()
def consumer(tmp_path: Path) -> dict[str, Any]:
    repo = tmp_path / "consumer"
    (repo / "pipelines").mkdir(parents=True)
    shutil.copytree(REPO / "golden_prompts", repo / "golden_prompts")
    shutil.copy(REPO / "pipelines" / "demo.yaml", repo / "pipelines" / "demo.yaml")
    (repo / "pipelines" / "other.yaml").write_text(
        (REPO / "pipelines" / "demo.yaml").read_text().replace("name: demo", "name: other")
    )
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    bin_dir = tmp_path / "bin"  # `gates` as the installed release: no gates/ in the consumer's checkout
    bin_dir.mkdir()
    (bin_dir / "gates").write_text(f'#!/bin/bash\nexec {sys.executable} -m gates.cli "$@"\n')
    (bin_dir / "gates").chmod(stat.S_IRWXU)
    return {"repo": repo, "bin": bin_dir, "ledger": tmp_path / "home" / "ledger.sqlite", "tmp": tmp_path}


def run_job(c: dict[str, Any], spec: dict[str, Any], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    script = spec["steps"][-1]["run"]
    base = {k: v for k, v in os.environ.items() if not k.startswith(("GATES_", "GITHUB_"))}
    base.update(PATH=f"{c['bin']}:{os.environ['PATH']}", PYTHONPATH=str(REPO), HOME=str(c["tmp"] / "home"))
    base.update(GITHUB_ACTIONS="true", GITHUB_WORKSPACE=str(c["repo"]), GITHUB_REPOSITORY=FULL_NAME)
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        cwd=c["repo"], env={**base, **env}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def comment(tmp: Path, body: str, login: str) -> Path:
    payload = json.loads((webhooks_dir() / "examples" / "issue_comment" / "created.payload.json").read_text())
    payload["issue"]["number"] = PR
    payload["issue"]["pull_request"] = {"url": f"https://api.github.com/repos/{FULL_NAME}/pulls/{PR}"}
    payload["comment"]["body"], payload["comment"]["user"]["login"], payload["sender"]["login"] = body, login, login
    path = tmp / f"comment-{time.monotonic_ns()}.json"
    path.write_text(json.dumps(payload))
    return path


def test_a_promote_comment_is_refused_for_a_stranger_and_without_a_passing_gate(consumer: dict[str, Any]) -> None:
    spec = job("gates-promote.yml", "promote")
    consumer["ledger"].parent.mkdir(parents=True)
    ledger = Ledger(str(consumer["ledger"]))
    state = CanaryState("demo", "kserve", "ml/demo/s3://b/demo", None, "s3://b/demo", 0, time.time(), "d" * 64)
    ledger.set_canary(state, "ops", "canary_deploy")
    with GitHubTestServer() as gh:
        gh.add_pull_request(FULL_NAME, PR, head_sha="a" * 40)
        gh.add_team_member("org", "release-managers", "rita")
        values = {
            "GATES_GITHUB_TOKEN": gh.token,
            "GATES_LEDGER": str(consumer["ledger"]),
            "GATES_GPU_ARCHS": '["h100"]',
        }
        env = {**job_env(spec, values), "GITHUB_API_URL": gh.url, "GATES_GITHUB_BACKOFF_S": "0.05"}
        env.update(GITHUB_EVENT_NAME="issue_comment")
        stranger = run_job(
            consumer,
            spec,
            {**env, "GITHUB_EVENT_PATH": str(comment(consumer["tmp"], "/gates promote demo", "mallory"))},
        )
        assert stranger.returncode == 0, stranger.stdout + stranger.stderr  # answered on the PR: handled
        reply = gh.comments_on(FULL_NAME, PR)[-1]["body"]
        assert "may not promote" in reply and "mallory is not in promotion.approvers" in reply
        rita = run_job(
            consumer, spec, {**env, "GITHUB_EVENT_PATH": str(comment(consumer["tmp"], "/gates promote demo", "rita"))}
        )
        assert rita.returncode == 1, rita.stdout + rita.stderr  # no gate run on the PR's head: refused
        assert "no gate run of pipelines/demo.yaml" in gh.comments_on(FULL_NAME, PR)[-1]["body"]
    actions = [h["action"] for h in Ledger(str(consumer["ledger"])).history("demo")]
    assert actions == ["canary_deploy", "promote_denied", "promote_refused"]
    assert Ledger(str(consumer["ledger"])).canary("demo").weight == 0  # type: ignore[union-attr]


def test_the_scheduled_recheck_passes_when_nothing_is_in_progress_and_reports_the_worst(
    consumer: dict[str, Any],
) -> None:
    spec = job("gates-recheck.yml", "recheck")
    env = job_env(spec, {"GATES_LEDGER": str(consumer["ledger"]), "PIPELINES": "pipelines/*.yaml"})
    first = run_job(consumer, spec, env)  # no ledger, nothing deployed: nothing to re-check
    assert first.returncode == 0, first.stdout + first.stderr
    assert "demo: no canary deployment recorded: nothing to re-check" in first.stdout
    ledger = Ledger(str(consumer["ledger"]))
    state = CanaryState("demo", "kserve", "ml/demo/s3://b/demo", None, "s3://b/demo", 0, time.time(), "d" * 64)
    ledger.set_canary(state, "ops", "canary_deploy")
    rec = PromotionRecord("demo", "d" * 64, PR, "a" * 40, PromotionState.ROLLED_BACK, -1, 0, "rita", time.time())
    ledger.set_promotion(rec, "rita", "rolled_back")
    again = run_job(consumer, spec, env)  # after a rollback the schedule must not alarm forever
    assert again.returncode == 0 and "demo: no promotion in progress (rolled_back)" in again.stdout, again.stderr
    (consumer["repo"] / "pipelines" / "broken.yaml").write_text("name: broken\nmodel: {}\n")
    worst = run_job(consumer, spec, env)  # one bad file: reported, the others still re-checked
    assert worst.returncode == 2 and "other: no canary deployment recorded" in worst.stdout, worst.stderr


def test_a_ledger_in_the_consumers_workspace_is_refused_naming_the_secret(consumer: dict[str, Any]) -> None:
    spec = job("gates-recheck.yml", "recheck")
    env = job_env(spec, {"GATES_LEDGER": "ledger.sqlite", "PIPELINES": "pipelines/demo.yaml"})
    proc = run_job(consumer, spec, env)
    assert proc.returncode == 2 and "GATES_LEDGER_URL" in proc.stderr and "inside the job's workspace" in proc.stderr
    assert not (consumer["repo"] / "ledger.sqlite").exists()
