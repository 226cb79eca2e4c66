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
