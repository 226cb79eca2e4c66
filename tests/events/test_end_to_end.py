"""PR event -> gate PASS -> /gates promote walks the canary to stable; refusals, rollback, kill -9.

Everything is real: `gates handle-event` in a subprocess, git for the PR's changed files, the
local GitHub test server, tritonserver serving stable and canary, the weighted router in front.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gates.ledger import CanaryState, Ledger
from gates.promotion.targets.weighted_router import WeightedRouter
from gates.testing import webhooks_dir
from gates.testing.github_server import GitHubTestServer
from gates.triton.repository import write_model
from gates.triton.server import TritonServer

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = webhooks_dir() / "examples"
FULL_NAME = "Codertocat/Hello-World"  # the repository of the example payloads
PR = 2

PIPELINE = """
name: e2e
model:
  source: builtin:tiny-llama
optimize:
  quantize:
    format: int8
    calibration: golden_prompts/calibration.jsonl
    samples: 16
load:
  operating_points: [throughput]   # one window: both points have their own tests (tests/judge/test_points.py)
  users: 2
  duration_s: 4
  warmup_s: 1
  max_new_tokens: 8
  generator_max_lag_ms: 60
golden:
  suites: [golden_prompts/demo.jsonl]
  max_new_tokens: 8
gates:
  top1_agreement_min: 0.95
  exact_match_rate_min: 0.8
  mean_kl_max: 0.05
  min_requests: 10
promotion:
  steps: [10, 25, 50, 100]
  approvers: ["@org/release-managers"]
  failure_limit: 1
  retry_interval_s: 0
  recheck: {requests: 24, max_new_tokens: 8, drift_prompts: 2, top1_agreement_min: 0.8}
"""


def git(repo: Path, *args: str) -> str:
    cmd = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com", *args]
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()


class BreakingRouter(WeightedRouter):
    """A router whose canary breaks (its model disappears) from a given weight on: a planted failure."""

    break_from: int | None = None

    def set_weight(self, weight: int) -> None:
        super().set_weight(weight)
        if self.break_from is not None and weight >= self.break_from:
            self.canary = "no-such-model"


@pytest.fixture()
def world(tmp_path: Path) -> Iterator[dict[str, Any]]:
    repo = tmp_path / "repo"
    (repo / "pipelines").mkdir(parents=True)
    shutil.copytree(REPO_ROOT / "golden_prompts", repo / "golden_prompts")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    base = git(repo, "rev-parse", "HEAD")
    (repo / "pipelines" / "e2e.yaml").write_text(PIPELINE.lstrip())
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "add the e2e pipeline")
    head = git(repo, "rev-parse", "HEAD")
    with GitHubTestServer() as gh:
        gh.add_pull_request(FULL_NAME, PR, head_sha=head)
        gh.add_team_member("org", "release-managers", "rita")
        env = {
            **os.environ,
            "GITHUB_API_URL": gh.url,
            "GATES_GITHUB_TOKEN": gh.token,
            "GATES_GITHUB_BACKOFF_S": "0.05",
        }
        yield {"repo": repo, "base": base, "head": head, "gh": gh, "env": env, "tmp": tmp_path}


def handle(world: dict[str, Any], name: str, payload: dict[str, Any], ledger: Path, artifacts: Path,
           wait: bool = True) -> Any:  # fmt: skip
    path = world["tmp"] / f"{name}-{time.monotonic_ns()}.json"
    path.write_text(json.dumps(payload))
    cmd = [sys.executable, "-m", "gates.cli", "handle-event", "--name", name, "--payload", str(path),
           "--repo-dir", str(world["repo"]), "--ledger", str(ledger), "--artifacts", str(artifacts)]  # fmt: skip
    if not wait:
        return subprocess.Popen(cmd, env=world["env"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return subprocess.run(cmd, env=world["env"], capture_output=True, text=True, timeout=600)


def pr_event(world: dict[str, Any]) -> dict[str, Any]:
    payload = json.loads((EXAMPLES / "pull_request" / "opened.payload.json").read_text())
    payload["pull_request"]["base"]["sha"] = world["base"]
    payload["pull_request"]["head"]["sha"] = world["head"]
    return dict(payload)


def comment(body: str, login: str) -> dict[str, Any]:
    payload = json.loads((EXAMPLES / "issue_comment" / "created.payload.json").read_text())
    payload["issue"]["number"] = PR
    payload["issue"]["pull_request"] = {"url": f"https://api.github.com/repos/{FULL_NAME}/pulls/{PR}"}
    payload["comment"]["body"] = body
    payload["comment"]["user"]["login"] = login
    payload["sender"]["login"] = login
    return dict(payload)


def copy_ledger(src: Path, dst: Path) -> Path:
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)
    return dst


def actions(ledger: Path) -> list[str]:
    return [h["action"] for h in Ledger(str(ledger)).history("e2e")]


def test_pr_to_stable_with_refusal_rollback_and_kill_9(
    world: dict[str, Any], artifacts_root: Path, tiny_model: Path, no_leaked_servers: None
) -> None:
    gh: GitHubTestServer = world["gh"]
    ledger = world["tmp"] / "ledger.sqlite"

    # 1. the PR event runs the gate on the pipeline the PR adds, at the PR's head
    done = handle(world, "pull_request", pr_event(world), ledger, artifacts_root)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "run pipelines/e2e.yaml PR #2" in done.stdout and "e2e: PASS" in done.stdout
    run = Ledger(str(ledger)).runs("e2e")[-1]
    assert (run.verdict, run.pr, run.sha) == ("PASS", PR, world["head"]) and run.digest
    assert any("gates:report pipeline=e2e" in c["body"] for c in gh.comments_on(FULL_NAME, PR))
    report = json.loads(Path(run.report).with_suffix(".json").read_text())  # type: ignore[arg-type]
    ledgers = {k: copy_ledger(ledger, world["tmp"] / f"{k}.sqlite") for k in ("fail", "kill")}

    # 2. the canary: stable (base) and candidate on one Triton, the router in front at 0%
    models = world["tmp"] / "models"
    write_model(models, "stable", tiny_model)
    write_model(models, "canary", Path(report["candidate"]["path"]))
    with TritonServer(models, world["tmp"] / "triton") as triton:
        triton.load_model("stable")
        triton.load_model("canary")

        def deploy(led: Path, router: WeightedRouter) -> None:
            state = CanaryState("e2e", "local", router.url, "stable", "canary", 0, time.time(), run.digest)
            Ledger(str(led)).set_canary(state, "ops", "canary_deploy")

        with WeightedRouter(triton.url, "model", "stable", "canary", 0, 0, triton.grpc_url) as router:
            deploy(ledger, router)
            # 3. an unauthorized user: a reply saying why, and nothing moves
            before = len(gh.comments_on(FULL_NAME, PR))
            done = handle(world, "issue_comment", comment("/gates promote e2e", "mallory"), ledger, artifacts_root)
            assert done.returncode == 0, done.stdout + done.stderr
            reply = gh.comments_on(FULL_NAME, PR)[before]["body"]
            assert "may not promote" in reply and "mallory is not in promotion.approvers" in reply
            assert "@org" not in reply  # the team named in the refusal is not pinged
            assert router.weight == 0 and Ledger(str(ledger)).promotion("e2e") is None

            # 4. a release manager: 10 -> 25 -> 50 -> 100 with a live re-check at each step
            done = handle(world, "issue_comment", comment("/gates promote e2e", "rita"), ledger, artifacts_root)
            assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
            assert router.weight == 100 and router.counts["canary"] > 0
            assert Ledger(str(ledger)).promotion("e2e").state == "stable"  # type: ignore[union-attr]
            steps = [h for h in Ledger(str(ledger)).history("e2e") if h["action"] in ("step_passed", "promoted")]
            assert [h["weight"] for h in steps] == [10, 25, 50, 100]
            assert all(h["actor"] == "rita" and h["digest"] == run.digest for h in steps)
            assert "promoted to stable" in gh.comments_on(FULL_NAME, PR)[-1]["body"]
            # and in GitHub as a deployment to environment gates/e2e, its last status a success
            (dep,) = gh.deployments.values()
            assert (dep["environment"], dep["ref"], dep["task"]) == ("gates/e2e", world["head"], "gates:canary")
            states = [st["state"] for st in gh.deployment_statuses]
            assert states[0] == "in_progress" and states[-1] == "success" and len(states) == 5

        # 5. a planted failure at step 2: the canary model breaks at 25%, the re-check fails, rollback
        with BreakingRouter(triton.url, "model", "stable", "canary", 0, 0, triton.grpc_url) as broken:
            broken.break_from = 25
            deploy(ledgers["fail"], broken)
            done = handle(world, "issue_comment", comment("/gates promote", "rita"), ledgers["fail"], artifacts_root)
            assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
            assert broken.weight == 0
            assert Ledger(str(ledgers["fail"])).promotion("e2e").state == "rolled_back"  # type: ignore[union-attr]
            tail = [a for a in actions(ledgers["fail"]) if a in ("step_passed", "check_failed", "rolled_back")]
            assert tail == ["step_passed", "check_failed", "rolled_back"]
            assert gh.deployment_statuses[-1]["state"] == "failure"

        # 6. kill -9 mid-promotion, then the same command again converges
        with WeightedRouter(triton.url, "model", "stable", "canary", 0, 0, triton.grpc_url) as router:
            deploy(ledgers["kill"], router)
            proc = handle(world, "issue_comment", comment("/gates promote e2e", "rita"), ledgers["kill"],
                          artifacts_root, wait=False)  # fmt: skip
            deadline = time.monotonic() + 300
            while "step_passed" not in actions(ledgers["kill"]) and time.monotonic() < deadline:
                assert proc.poll() is None, proc.communicate()[0][-3000:]
                time.sleep(0.05)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(30)
            killed_at = Ledger(str(ledgers["kill"])).promotion("e2e")
            assert killed_at is not None and killed_at.state == "canary", "killed after it had finished"
            done = handle(world, "issue_comment", comment("/gates promote e2e", "rita"), ledgers["kill"],
                          artifacts_root)  # fmt: skip
            assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
            assert router.weight == 100
            log = Ledger(str(ledgers["kill"])).history("e2e")
            assert Ledger(str(ledgers["kill"])).promotion("e2e").state == "stable"  # type: ignore[union-attr]
            assert any(h["action"] == "lock_taken_over" and f"pid {proc.pid}" in h["detail"] for h in log)
            passed = [h["weight"] for h in log if h["action"] in ("step_passed", "promoted")]
            assert passed == [10, 25, 50, 100]  # every step judged exactly once despite the crash
    # the audit: every transition of the first promotion, in order, with who and what
    printed = subprocess.run(
        [sys.executable, "-m", "gates.cli", "history", "e2e", "--ledger", str(ledger)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert printed.returncode == 0
    for word in ("gate_run", "promote_denied", "promotion_started", "step_passed", "promoted", "mallory", "rita"):
        assert word in printed.stdout, printed.stdout
