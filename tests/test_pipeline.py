"""The runner's contract without models: failures become INCONCLUSIVE, reports survive, publishing fails closed."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from gates.config import load_pipeline
from gates.context import RunContext
from gates.errors import DataError, ExitCode, InfraError, UnsupportedError
from gates.pipeline import run_pipeline
from gates.stages.preflight import PreflightStage
from gates.testing.github_server import GitHubTestServer

CFG = "name: unit\nmodel:\n  source: builtin:tiny-llama\ngolden:\n  suites: [golden_prompts/demo.jsonl]\n"


class Boom:
    name = "boom"

    def __init__(self, exc: Exception):
        self.exc = exc

    def run(self, ctx: RunContext) -> None:
        raise self.exc


def test_infrastructure_error_is_inconclusive_with_report(write_pipeline: Callable[..., Path], tmp_path: Path) -> None:
    pf = load_pipeline(write_pipeline(CFG))
    lines: list[str] = []
    out = run_pipeline(pf, tmp_path / "a", tmp_path / "run", lines.append, stages=(Boom(InfraError("server died")),))
    assert out.verdict == "INCONCLUSIVE" and out.exit_code == ExitCode.INFRA
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["verdict"] == "INCONCLUSIVE" and "server died" in report["reason"] and report["gates"] == []
    assert "not evaluated" in (tmp_path / "run" / "report.md").read_text()
    assert json.loads((tmp_path / "run" / "run.json").read_text())["exit_code"] == 3


def test_a_bug_is_never_a_pass(write_pipeline: Callable[..., Path], tmp_path: Path) -> None:
    pf = load_pipeline(write_pipeline(CFG))
    out = run_pipeline(pf, tmp_path / "a", tmp_path / "run", lambda s: None, stages=(Boom(KeyError("x")),))
    assert out.verdict == "INCONCLUSIVE" and out.exit_code == ExitCode.INFRA
    assert "internal error" in out.reason and (tmp_path / "run" / "traceback.txt").is_file()


def test_bad_input_propagates_without_a_verdict(write_pipeline: Callable[..., Path], tmp_path: Path) -> None:
    pf = load_pipeline(write_pipeline(CFG))
    with pytest.raises(DataError):
        run_pipeline(pf, tmp_path / "a", tmp_path / "run", lambda s: None, stages=(Boom(DataError("bad rows")),))


def test_publish_failure_keeps_the_report_and_exits_3(write_pipeline: Callable[..., Path], tmp_path: Path) -> None:
    pf = load_pipeline(write_pipeline(CFG))
    lines: list[str] = []
    with GitHubTestServer(token="t") as gh:
        gh.add_pull_request("o/r", 3)
        gh.fail_next(1000, "502")
        env = {
            "GITHUB_TOKEN": "t",
            "GITHUB_REPOSITORY": "o/r",
            "GATES_PR_NUMBER": "3",
            "GITHUB_API_URL": gh.url,
            "GATES_GITHUB_BACKOFF_S": "0",
            "GATES_GITHUB_RETRIES": "1",
        }
        out = run_pipeline(pf, tmp_path / "a", tmp_path / "run", lines.append, env=env, stages=())
    assert out.exit_code == ExitCode.INFRA
    assert any("publish failed: GitHub GET /repos/o/r failed after 2 attempt(s): 502" in line for line in lines)
    assert (tmp_path / "run" / "report.md").is_file() and (tmp_path / "run" / "report.json").is_file()


def test_publish_posts_the_comment(write_pipeline: Callable[..., Path], tmp_path: Path) -> None:
    pf = load_pipeline(write_pipeline(CFG))
    with GitHubTestServer(token="t") as gh:
        gh.add_pull_request("o/r", 3)
        env = {
            "GITHUB_TOKEN": "t",
            "GITHUB_REPOSITORY": "o/r",
            "GATES_PR_NUMBER": "3",
            "GITHUB_API_URL": gh.url,
            "GATES_COMMIT_SHA": "ab" * 20,
        }
        run_pipeline(pf, tmp_path / "a", tmp_path / "run", lambda s: None, env=env, stages=())
        comments = gh.comments_on("o/r", 3)
        assert len(comments) == 1 and comments[0]["body"].startswith("<!-- gates:report pipeline=unit -->")
        assert gh.combined_status("o/r", "ab" * 20)["gates/unit"]["state"] == "error"


def test_a_stage_error_after_preflight_still_reports(write_pipeline: Callable[..., Path], tmp_path: Path) -> None:
    """Issue 11: optimize raised on a real checkpoint, then the report crashed on top of it."""
    pf = load_pipeline(write_pipeline(CFG))
    stages = (PreflightStage(), Boom(ValueError("Asking to pad but the tokenizer does not have a padding token")))
    out = run_pipeline(pf, tmp_path / "a", tmp_path / "run", lambda s: None, stages=stages)
    assert out.verdict == "INCONCLUSIVE" and out.exit_code == ExitCode.INFRA
    for name in ("report.json", "report.md", "report.html", "run.json"):
        assert (tmp_path / "run" / name).is_file(), name
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert "padding token" in report["error"] and report["drift"] is None and report["load"] is None


def test_bad_input_found_after_preflight_is_reported_and_exits_2(
    write_pipeline: Callable[..., Path], tmp_path: Path
) -> None:
    pf = load_pipeline(write_pipeline(CFG))
    stages = (PreflightStage(), Boom(UnsupportedError("model.source 'x': Model Optimizer refused GPT2LMHeadModel")))
    out = run_pipeline(pf, tmp_path / "a", tmp_path / "run", lambda s: None, stages=stages)
    assert out.verdict == "INCONCLUSIVE" and out.exit_code == ExitCode.BAD_INPUT
    assert "refused GPT2LMHeadModel" in json.loads((tmp_path / "run" / "report.json").read_text())["error"]


# -- issue 17: nothing measured is lost -------------------------------------------------------
def test_busy_ledger_keeps_the_run_in_the_journal(write_pipeline: Callable[..., Path], tmp_path: Path) -> None:
    import sqlite3

    from gates.cli.common import open_ledger
    from gates.journal import Journal
    from gates.ledger import Ledger
    from gates.promotion.gate import record_run

    pf = load_pipeline(write_pipeline(CFG))
    out = run_pipeline(pf, tmp_path / "a", tmp_path / "run", lambda s: None, stages=())
    url = str(tmp_path / "l.db")
    ledger = Ledger(url, busy_timeout_s=0.05)
    other = sqlite3.connect(url, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the ledger
    lines: list[str] = []
    kept = record_run(ledger, "unit", out, "me", 3, "ab" * 20, Journal(tmp_path / "a"), lines.append, budget_s=0.5)
    assert kept is False and "kept in" in lines[-1] and ledger.runs() == []
    other.execute("ROLLBACK")
    replayed = open_ledger(url, tmp_path / "a").runs()
    assert [(r.pipeline, r.verdict, r.pr, r.run_dir) for r in replayed] == [("unit", out.verdict, 3, str(out.run_dir))]


@pytest.mark.parametrize("fault", ["refused", "hang"])
def test_unreachable_github_still_writes_run_json(
    write_pipeline: Callable[..., Path], tmp_path: Path, fault: str
) -> None:
    import socket

    from gates.ledger import Ledger
    from gates.promotion.gate import gate_commit

    pf = load_pipeline(write_pipeline(CFG))
    with GitHubTestServer(token="t") as gh:
        gh.add_pull_request("o/r", 3)
        gh.hang_s = 1.0
        gh.fail_next(100, "hang")
        api = gh.url
        if fault == "refused":
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                api = f"http://127.0.0.1:{s.getsockname()[1]}"
        env = {
            "GITHUB_TOKEN": "t",
            "GITHUB_REPOSITORY": "o/r",
            "GATES_PR_NUMBER": "3",
            "GITHUB_API_URL": api,
            "GATES_GITHUB_BACKOFF_S": "0",
            "GATES_GITHUB_RETRIES": "1",
            "GATES_GITHUB_TIMEOUT_S": "0.2",
        }
        lines: list[str] = []
        ledger = Ledger(str(tmp_path / "l.db"))
        out = gate_commit(pf, tmp_path / "a", ledger, "ci", 3, "ab" * 20, env, lines.append, tmp_path / "run", ())
    assert out.exit_code == ExitCode.INFRA
    assert json.loads((tmp_path / "run" / "run.json").read_text())["exit_code"] == 3
    assert any("publish failed: GitHub" in line and "after 2 attempt(s)" in line for line in lines)
    assert [(r.pr, r.sha, r.run_dir) for r in ledger.runs()] == [(3, "ab" * 20, str(tmp_path / "run"))]


@pytest.mark.parametrize("broken", ["render_html", "render_markdown", "build_report"])
def test_a_report_rendering_failure_never_loses_the_verdict(
    write_pipeline: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, broken: str
) -> None:
    """report.html crashed on a mathtext prompt id after the measurement: no run.json, no report.json,
    no ledger row. Whatever part of the report fails, the verdict is written."""
    import gates.stages.report as report_stage

    def boom(*args: object, **kwargs: object) -> str:
        raise ValueError("Unknown symbol: \\color")

    monkeypatch.setattr(report_stage, broken, boom)
    pf = load_pipeline(write_pipeline(CFG))
    lines: list[str] = []
    out = run_pipeline(pf, tmp_path / "a", tmp_path / "run", lines.append, stages=(Boom(InfraError("died")),))
    assert out.verdict == "INCONCLUSIVE" and "died" in out.reason
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["verdict"] == "INCONCLUSIVE" and run["exit_code"] == 3
    assert any("report" in line and "Unknown symbol" in line for line in lines), lines
    if broken != "build_report":
        assert json.loads((tmp_path / "run" / "report.json").read_text())["verdict"] == "INCONCLUSIVE"
        assert "INCONCLUSIVE" in (tmp_path / "run" / "report.md").read_text()


class ServedElsewhere:
    """What optimize and deploy leave when serve.triton names an existing Triton."""

    name = "served-elsewhere"

    def __init__(self, local: bool):
        self.local = local

    def run(self, ctx: RunContext) -> None:
        from gates.artifacts import EngineBuild, ModelRef
        from gates.record import BuildResult, DeployResult, OptimizeResult

        ref = ModelRef("candidate", Path("/x"), "m" * 64, "int8_sq", "simulated")
        ctx.put(OptimizeResult(ref, ref, True, 0.0, (), "", ()))
        build = EngineBuild("torch", ref, Path("/x"), "k" * 64, True, False, "", build_digest="c" * 64)
        ctx.put(BuildResult(build, build, ""))  # the served build is the candidate's identity
        server = object() if self.local else None
        ctx.put(DeployResult("triton:8000", "triton:8001", {}, server, "existing Triton"))  # type: ignore[arg-type]
        raise InfraError("stop here")


@pytest.mark.parametrize("local", [True, False])
def test_a_verdict_on_an_existing_triton_is_not_bound_to_the_built_digest(
    write_pipeline: Callable[..., Path], tmp_path: Path, local: bool
) -> None:
    """serve.triton: http://host:port — nothing ties the models that answer to the built artifacts:
    the verdict is recorded without the digest (promotion refuses a PASS without one) and says so."""
    pf = load_pipeline(write_pipeline(CFG))
    lines: list[str] = []
    out = run_pipeline(pf, tmp_path / "a", tmp_path / "run", lines.append, stages=(ServedElsewhere(local),))
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    if local:
        assert out.candidate_digest == "c" * 64 and run["bound"] is True
    else:
        assert out.candidate_digest is None and run["bound"] is False
        assert any("unbound" in line for line in lines), lines


def test_the_ledger_row_is_written_when_the_report_stage_fails(
    write_pipeline: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gates.stages.report as report_stage
    from gates.ledger import Ledger
    from gates.promotion.gate import gate_commit

    def boom(*args: object, **kwargs: object) -> str:
        raise ValueError("Unknown symbol: \\color")

    monkeypatch.setattr(report_stage, "build_report", boom)
    ledger = Ledger(str(tmp_path / "ledger.sqlite"))
    pf = load_pipeline(write_pipeline(CFG))
    out = gate_commit(
        pf, tmp_path / "a", ledger, "ci", 5, "a" * 40, {}, lambda s: None, tmp_path / "run",
        stages=(Boom(InfraError("died")),),
    )  # fmt: skip
    assert out.exit_code == ExitCode.INFRA
    (row,) = ledger.runs(pipeline="unit")
    assert row.verdict == "INCONCLUSIVE" and row.sha == "a" * 40
