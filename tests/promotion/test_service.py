"""What a promotion checks before it moves: the commit that was approved, every run on it, its pipeline file."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gates.errors import ExitCode
from gates.events.handle import HandlerContext, execute_action
from gates.events.routing import Action
from gates.ledger import CanaryState, Ledger
from gates.promotion.machine import CheckResult
from gates.promotion.targets.weighted_router import WeightedRouter
from gates.testing.github_server import GitHubTestServer

REPO = Path(__file__).resolve().parents[2]
FULL_NAME, PR = "o/r", 7
A, B = "a" * 40, "b" * 40
DIGEST = "d" * 64
DEMO = "pipelines/demo.yaml"


class Passes:
    def check(self, pipeline: str, weight: int) -> CheckResult:
        return CheckResult(True, "ok", 10)


@pytest.fixture()
def world(tmp_path: Path) -> Iterator[dict[str, Any]]:
    repo = tmp_path / "repo"
    (repo / "pipelines").mkdir(parents=True)
    shutil.copytree(REPO / "golden_prompts", repo / "golden_prompts")
    text = (REPO / "pipelines" / "demo.yaml").read_text().replace('["@org/release-managers"]', '["rita"]')
    (repo / "pipelines" / "demo.yaml").write_text(text)
    with GitHubTestServer() as gh, WeightedRouter("127.0.0.1:9", "model", "s", "c", 0, 0, "127.0.0.1:9") as router:
        gh.add_pull_request(FULL_NAME, PR, head_sha=A)
        env = {"GITHUB_API_URL": gh.url, "GATES_GITHUB_TOKEN": gh.token, "GATES_GITHUB_BACKOFF_S": "0.05"}
        ledger = Ledger(str(tmp_path / "l.sqlite"))
        ledger.set_canary(CanaryState("demo", "local", router.url, "s", "c", 0, time.time(), DIGEST), "ops", "deploy")
        ctx = HandlerContext(repo, ledger, env, tmp_path / "artifacts", progress=lambda _: None)
        ctx.checker_for = lambda pf, canary: Passes()
        yield {"ctx": ctx, "gh": gh, "router": router, "ledger": ledger, "repo": repo}


def promote(world: dict[str, Any], sha: str | None = None, why: str = "comment '/gates promote'") -> Any:
    action = Action("promote", "pipelines/demo.yaml", FULL_NAME, "rita", PR, sha, why)
    return execute_action(action, world["ctx"])


def test_an_approval_promotes_only_the_commit_it_reviewed(world: dict[str, Any]) -> None:
    """Issue 27 item 3: approved at A, the PR moved to B (which passed too): B is not promoted by A's review."""
    ledger: Ledger = world["ledger"]
    ledger.add_run("demo", "PASS", "ci", pr=PR, sha=A, digest=DIGEST, config=DEMO)
    world["gh"].set_pull_head(FULL_NAME, PR, B)
    ledger.add_run("demo", "PASS", "ci", pr=PR, sha=B, digest=DIGEST, config=DEMO)
    result = promote(world, sha=A, why="review approved")
    assert result.exit_code == ExitCode.FAIL and "approval was given at aaaaaaaaaaaa" in result.message
    assert world["router"].weight == 0 and ledger.promotion("demo") is None
    world["gh"].set_pull_head(FULL_NAME, PR, A)  # the approved commit is the head: it goes ahead
    assert promote(world, sha=A, why="review approved").exit_code == ExitCode.PASS
    assert ledger.promotion("demo").sha == A  # type: ignore[union-attr]


def test_a_fail_on_one_architecture_is_not_undone_by_a_pass_on_another(world: dict[str, Any]) -> None:
    """Issue 27 item 1: the matrix gives FAIL (h100) then PASS (l40s) on one commit: no promotion."""
    ledger: Ledger = world["ledger"]
    ledger.add_run("demo", "FAIL", "ci", pr=PR, sha=A, digest=DIGEST, arch="h100", config=DEMO)
    ledger.add_run("demo", "PASS", "ci", pr=PR, sha=A, digest=DIGEST, arch="l40s", config=DEMO)
    result = promote(world)
    assert result.exit_code == ExitCode.FAIL and "FAIL (on h100)" in result.message
    assert world["router"].weight == 0 and ledger.promotion("demo") is None
    assert [r.arch for r in ledger.runs("demo")] == ["h100", "l40s"]  # recorded per architecture


def test_every_configured_architecture_must_pass(world: dict[str, Any]) -> None:
    ledger: Ledger = world["ledger"]
    world["ctx"].architectures = ("h100", "l40s")
    ledger.add_run("demo", "PASS", "ci", pr=PR, sha=A, digest=DIGEST, arch="h100", config=DEMO)
    result = promote(world)
    assert result.exit_code == ExitCode.FAIL and "no gate run on l40s" in result.message
    ledger.add_run("demo", "PASS", "ci", pr=PR, sha=A, digest=DIGEST, arch="l40s", config=DEMO)
    assert promote(world).exit_code == ExitCode.PASS


EVIL = """name: demo
model: {source: builtin:tiny-llama}
golden: {suites: [golden_prompts/demo.jsonl]}
gates: {top1_agreement_min: 0.0, mean_kl_max: 100.0}
"""


def test_another_files_verdict_under_the_same_name_does_not_promote(world: dict[str, Any]) -> None:
    """Issue 27 item 6: a PASS recorded for pipelines/evil.yaml (declaring name: demo) is not demo's."""
    ledger: Ledger = world["ledger"]
    ledger.add_run("demo", "PASS", "ci", pr=PR, sha=A, digest=DIGEST, config="pipelines/evil.yaml")
    result = promote(world)
    assert result.exit_code == ExitCode.FAIL and "no gate run of pipelines/demo.yaml" in result.message
    assert world["router"].weight == 0 and ledger.promotion("demo") is None


def test_two_files_declaring_one_name_are_refused(world: dict[str, Any], tmp_path: Path) -> None:
    from gates.config import load_pipeline
    from gates.errors import ConfigError
    from gates.promotion.gate import gate_commit

    repo: Path = world["repo"]
    (repo / "pipelines" / "evil.yaml").write_text(EVIL)
    ledger: Ledger = world["ledger"]
    evil = load_pipeline(repo / "pipelines" / "evil.yaml")
    with pytest.raises(ConfigError, match=r"name 'demo' is also declared by .*demo\.yaml") as err:
        gate_commit(evil, tmp_path / "art", ledger, "ci", PR, A, {}, lambda _: None, stages=())
    assert err.value.exit_code == ExitCode.BAD_INPUT and ledger.runs() == []
    ledger.add_run("demo", "PASS", "ci", pr=PR, sha=A, digest=DIGEST, config=DEMO)
    result = promote(world)  # promoting either is refused while both declare it
    assert result.exit_code == ExitCode.BAD_INPUT and "also declared by" in result.message
    assert world["router"].weight == 0
