"""Actions carried out by the handler without Triton: a KServe rollback, refusals by digest and commit."""

from __future__ import annotations

import os
import shutil
import stat
import time
from pathlib import Path

import pytest
import yaml

from gates.errors import ExitCode
from gates.events.handle import HandlerContext, execute_action
from gates.events.routing import Action
from gates.ledger import CanaryState, Ledger
from gates.promotion.targets.weighted_router import WeightedRouter

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def ctx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> HandlerContext:
    repo = tmp_path / "repo"
    (repo / "pipelines").mkdir(parents=True)
    shutil.copytree(REPO / "golden_prompts", repo / "golden_prompts")
    text = (REPO / "pipelines" / "demo.yaml").read_text().replace('["@org/release-managers"]', '["rita"]')
    (repo / "pipelines" / "demo.yaml").write_text(text)
    # kubectl as a cluster would take it: record what is applied (no cluster on these machines)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    kubectl = bin_dir / "kubectl"
    kubectl.write_text(f'#!/bin/sh\ncp "$3" {tmp_path}/applied.yaml\necho "inferenceservice configured"\n')
    kubectl.chmod(kubectl.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.chdir(tmp_path)
    ledger = Ledger(str(tmp_path / "l.sqlite"))
    return HandlerContext(repo, ledger, {}, tmp_path / "artifacts", progress=lambda _: None)


def test_rollback_on_kserve_needs_no_live_checker(ctx: HandlerContext, tmp_path: Path) -> None:
    state = CanaryState("demo", "kserve", "ml/demo/s3://b/demo", None, "s3://b/demo", 25, time.time(), "d" * 64)
    ctx.ledger.set_canary(state, "ops", "canary_deploy")
    denied = execute_action(Action("rollback", "pipelines/demo.yaml", "o/r", "mallory", None, None, "cli"), ctx)
    assert denied.exit_code == ExitCode.PASS and "not authorized" in denied.message
    assert ctx.ledger.canary("demo").weight == 25  # type: ignore[union-attr]
    done = execute_action(Action("rollback", "pipelines/demo.yaml", "o/r", "rita", None, None, "cli"), ctx)
    assert done.exit_code == ExitCode.PASS and "rolled back" in done.message
    applied = yaml.safe_load((tmp_path / "applied.yaml").read_text())
    assert applied["spec"]["predictor"]["canaryTrafficPercent"] == 0
    assert ctx.ledger.canary("demo").weight == 0 and ctx.ledger.promotion("demo").state == "rolled_back"  # type: ignore[union-attr]


def test_promote_refused_without_a_passing_run(ctx: HandlerContext) -> None:
    with WeightedRouter("127.0.0.1:9", "model", "s", "c", 0, 0, "127.0.0.1:9") as router:
        state = CanaryState("demo", "local", router.url, "s", "c", 0, time.time(), "d" * 64)
        ctx.ledger.set_canary(state, "ops", "canary_deploy")
        promote = Action("promote", "pipelines/demo.yaml", "o/r", "rita", None, None, "cli")
        assert execute_action(promote, ctx).exit_code == ExitCode.FAIL  # no gate run at all
        ctx.ledger.add_run("demo", "FAIL", "ci", digest="d" * 64, config="pipelines/demo.yaml")
        result = execute_action(promote, ctx)
        assert result.exit_code == ExitCode.FAIL and "is not PASS: a gate run is FAIL" in result.message
        ctx.ledger.add_run(
            "demo", "PASS", "ci", digest="e" * 64, config="pipelines/demo.yaml"
        )  # passed, but not what is deployed
        result = execute_action(promote, ctx)
        refused = f"the deployed canary serves build {'d' * 64} but the gate passed build {'e' * 64}"
        assert result.exit_code == ExitCode.FAIL and refused in result.message
        assert router.weight == 0 and ctx.ledger.promotion("demo") is None
    refusals = [h["action"] for h in ctx.ledger.history("demo") if h["action"] == "promote_refused"]
    assert len(refusals) == 3  # each refusal is on record


def test_promote_on_kserve_without_its_url_is_refused_unchecked(ctx: HandlerContext) -> None:
    state = CanaryState("demo", "kserve", "ml/demo/s3://b/demo", None, "s3://b/demo", 0, time.time(), "d" * 64)
    ctx.ledger.set_canary(state, "ops", "canary_deploy")
    ctx.ledger.add_run("demo", "PASS", "ci", digest="d" * 64, config="pipelines/demo.yaml")
    result = execute_action(Action("promote", "pipelines/demo.yaml", "o/r", "rita", None, None, "cli"), ctx)
    assert result.exit_code == ExitCode.INFRA and "need its URL and model name" in result.message
    assert ctx.ledger.canary("demo").weight == 0  # fail closed: never promoted unchecked  # type: ignore[union-attr]


def test_a_rollback_event_never_waits_on_the_journal_and_a_promote_replays_it(ctx: HandlerContext) -> None:
    """Issue 27 item 13: handle-event and gates serve replay the journal before what reads runs, not rollbacks."""
    from gates.journal import Journal

    ctx.replay_journal = True
    state = CanaryState("demo", "kserve", "ml/demo/s3://b/demo", None, "s3://b/demo", 25, time.time(), "d" * 64)
    ctx.ledger.set_canary(state, "ops", "canary_deploy")
    kept = Journal(ctx.artifacts).add(ctx.ledger, "run", {"pipeline": "demo", "verdict": "FAIL", "actor": "ci"})
    done = execute_action(Action("rollback", "pipelines/demo.yaml", "o/r", "rita", None, None, "cli"), ctx)
    assert done.exit_code == ExitCode.PASS and kept.exists()
    execute_action(Action("promote", "pipelines/demo.yaml", "o/r", "rita", None, None, "cli"), ctx)
    assert not kept.exists() and [r.verdict for r in ctx.ledger.runs("demo")] == ["FAIL"]
