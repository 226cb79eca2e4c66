"""github3.py against our local GitHub server: sticky comment, statuses, check runs, retries."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gates.errors import InfraError
from gates.github.client import GitHubTarget
from gates.github.publish import publish_report
from gates.report.render import MARKER
from gates.testing.github_server import GitHubTestServer

REPO, PR, SHA = "octo/models", 7, "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture()
def gh() -> Iterator[GitHubTestServer]:
    with GitHubTestServer(token="s3cret") as server:
        server.add_pull_request(REPO, PR)
        yield server


def _target(gh: GitHubTestServer, **kw: object) -> GitHubTarget:
    base = dict(api_url=gh.url, token="s3cret", repository=REPO, pr=PR, sha=SHA, backoff_s=0.0, retries=3)
    base.update(kw)
    return GitHubTarget(**base)  # type: ignore[arg-type]


def _md(verdict: str, n: int) -> str:
    return f"{MARKER.format(name='demo')}\n## gates: **{verdict}** (post {n})\n"


def test_three_posts_leave_one_comment_and_one_status(gh: GitHubTestServer) -> None:
    for n, verdict in enumerate(["FAIL", "INCONCLUSIVE", "PASS"]):
        url = publish_report(_target(gh), "demo", _md(verdict, n), verdict, f"reason {n}")
        assert url.startswith("https://github.example/octo/models/pull/7#issuecomment-")
    comments = gh.comments_on(REPO, PR)
    assert len(comments) == 1
    assert comments[0]["_edits"] == 2 and "(post 2)" in comments[0]["body"]
    combined = gh.combined_status(REPO, SHA)
    assert list(combined) == ["gates/demo"] and combined["gates/demo"]["state"] == "success"
    assert [s["state"] for s in gh.statuses] == ["failure", "error", "success"]


def test_other_pipelines_and_other_comments_are_left_alone(gh: GitHubTestServer) -> None:
    publish_report(_target(gh), "demo", _md("PASS", 0), "PASS", "ok")
    publish_report(_target(gh), "other", f"{MARKER.format(name='other')}\nx", "FAIL", "no")
    publish_report(_target(gh), "demo", _md("FAIL", 1), "FAIL", "no")
    bodies = sorted(c["body"] for c in gh.comments_on(REPO, PR))
    assert len(bodies) == 2 and "(post 1)" in bodies[0] and bodies[1].endswith("x")
    assert set(gh.combined_status(REPO, SHA)) == {"gates/demo", "gates/other"}


def test_check_runs_one_per_commit_with_conclusions(gh: GitHubTestServer) -> None:
    for n, verdict in enumerate(["PASS", "INCONCLUSIVE", "FAIL"]):
        publish_report(
            _target(gh, check_runs=True, details_url="https://ci.example/run/1"),
            "demo",
            _md(verdict, n),
            verdict,
            "why",
        )
    runs = list(gh.check_runs.values())
    assert len(runs) == 1
    assert runs[0]["name"] == "gates/demo" and runs[0]["conclusion"] == "failure" and runs[0]["_edits"] == 2
    assert "(post 2)" in runs[0]["output"]["summary"] and runs[0]["details_url"] == "https://ci.example/run/1"
    assert not gh.statuses


def test_transient_502s_are_retried(gh: GitHubTestServer) -> None:
    slept: list[float] = []
    gh.fail_next(2, "502")
    publish_report(_target(gh, backoff_s=0.5), "demo", _md("PASS", 0), "PASS", "ok", sleep=slept.append)
    assert slept == [0.5, 1.0]
    assert len(gh.comments_on(REPO, PR)) == 1


def test_secondary_rate_limit_honours_retry_after(gh: GitHubTestServer) -> None:
    slept: list[float] = []
    gh.fail_next(1, "secondary_rate_limit")
    publish_report(_target(gh, backoff_s=5.0), "demo", _md("PASS", 0), "PASS", "ok", sleep=slept.append)
    assert slept == [0.0]  # the server's Retry-After, not our backoff


def test_a_502_hiding_a_created_comment_does_not_duplicate_it(gh: GitHubTestServer) -> None:
    publish_report(_target(gh), "demo", _md("PASS", 0), "PASS", "ok")
    gh.comments.clear()
    # list succeeds (nothing found), then the create is answered 502 once
    original = gh._create_comment

    def create_then_fail(*args: object) -> object:
        original(*args)  # type: ignore[arg-type]  # the comment is created, then the answer is lost
        gh._create_comment = original  # type: ignore[method-assign]
        return 502, {"message": "Server Error"}, {}

    gh._create_comment = create_then_fail  # type: ignore[method-assign]
    publish_report(_target(gh), "demo", _md("FAIL", 1), "FAIL", "no", sleep=lambda s: None)
    comments = gh.comments_on(REPO, PR)
    assert len(comments) == 1 and "(post 1)" in comments[0]["body"]


def test_persistent_failure_names_the_endpoint(gh: GitHubTestServer) -> None:
    gh.fail_next(100, "502")
    with pytest.raises(InfraError) as info:
        publish_report(_target(gh, retries=2), "demo", _md("PASS", 0), "PASS", "ok", sleep=lambda s: None)
    assert f"GitHub GET /repos/{REPO} failed after 3 attempt(s): 502" in str(info.value)


def test_bad_token_is_not_retried_and_never_printed(gh: GitHubTestServer) -> None:
    target = _target(gh, token="wrong-token")
    with pytest.raises(InfraError) as info:
        publish_report(target, "demo", _md("PASS", 0), "PASS", "ok", sleep=lambda s: pytest.fail("retried"))
    assert "401" in str(info.value) and "wrong-token" not in str(info.value)
    assert "wrong-token" not in repr(target)


def test_oversized_report_is_trimmed_never_the_verdict(gh: GitHubTestServer) -> None:
    md = _md("FAIL", 0) + "| gate | x |\n" + "<details><summary>worst</summary>\n" + "y" * 70_000 + "\n</details>\n"
    publish_report(_target(gh), "demo", md, "FAIL", "no")
    body = gh.comments_on(REPO, PR)[0]["body"]
    assert len(body) <= 65_536 and "**FAIL**" in body and "trimmed to fit" in body


def test_gates_publish_cli(gh: GitHubTestServer, tmp_path: Path) -> None:
    (tmp_path / "report.json").write_text(json.dumps({"pipeline": "demo", "verdict": "PASS", "reason": "ok"}))
    (tmp_path / "report.md").write_text(_md("PASS", 0))
    env = {
        "PATH": "/usr/bin:/bin",
        "GITHUB_TOKEN": "s3cret",
        "GITHUB_REPOSITORY": REPO,
        "GATES_PR_NUMBER": str(PR),
        "GATES_COMMIT_SHA": SHA,
        "GITHUB_API_URL": gh.url,
        "GATES_GITHUB_BACKOFF_S": "0",
        "GATES_LEDGER": str(tmp_path / "ledger.sqlite"),
        "GATES_ARTIFACTS": str(tmp_path / "artifacts"),
    }
    ok = subprocess.run(
        [sys.executable, "-m", "gates.cli", "publish", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    assert "posted: https://github.example/octo/models/pull/7#issuecomment-" in ok.stdout
    gh.fail_next(100, "502")
    bad = subprocess.run(
        [sys.executable, "-m", "gates.cli", "publish", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 3 and f"GitHub GET /repos/{REPO} failed" in bad.stderr
    assert "s3cret" not in bad.stderr + bad.stdout


# -- issue 17: unreachable GitHub is retried and reported, waits are bounded ---------------------
def test_connection_refused_is_retried_then_an_infra_error(gh: GitHubTestServer) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on: connection refused
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    slept: list[float] = []
    target = _target(gh, api_url=dead, retries=2)
    with pytest.raises(InfraError, match=r"failed after 3 attempt\(s\)"):
        publish_report(target, "demo", _md("PASS", 0), "PASS", "ok", sleep=slept.append)
    assert len(slept) == 2  # retried, not raised raw on the first refusal


@pytest.mark.parametrize("fault", ["hang", "drop"])
def test_read_timeout_and_dropped_connection_are_retried(gh: GitHubTestServer, fault: str) -> None:
    gh.hang_s = 1.0
    gh.fail_next(1, fault)
    url = publish_report(_target(gh, read_timeout_s=0.3), "demo", _md("PASS", 0), "PASS", "ok", sleep=lambda s: None)
    assert url and len(gh.comments_on(REPO, PR)) == 1


def test_huge_retry_after_is_not_slept(gh: GitHubTestServer) -> None:
    slept: list[float] = []
    gh.fail_next(1, "retry_after:36000")
    with pytest.raises(InfraError, match="retry after 36000s"):
        publish_report(_target(gh), "demo", _md("PASS", 0), "PASS", "ok", sleep=slept.append)
    assert slept == []
    gh.fail_next(1, "retry_after:45")
    publish_report(_target(gh), "demo", _md("PASS", 0), "PASS", "ok", sleep=slept.append)
    assert slept == [45.0]


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"GATES_PR_NUMBER": "12abc"}, "GATES_PR_NUMBER"),
        ({"GITHUB_REPOSITORY": "no-slash"}, "GITHUB_REPOSITORY"),
        ({"GITHUB_REPOSITORY": "--upload-pack=x/y z"}, "GITHUB_REPOSITORY"),
        ({"GATES_GITHUB_RETRIES": "many"}, "GATES_GITHUB_RETRIES"),
        ({"GATES_GITHUB_BACKOFF_S": "inf"}, "GATES_GITHUB_BACKOFF_S"),
    ],
)
def test_malformed_environment_is_bad_input(env: dict[str, str], needle: str) -> None:
    from gates.errors import BadInputError

    base = {"GITHUB_TOKEN": "t", "GITHUB_REPOSITORY": "o/r", "GATES_PR_NUMBER": "3"}
    with pytest.raises(BadInputError, match=needle):
        GitHubTarget.from_env({**base, **env})


def test_publish_records_runs_a_busy_ledger_left_in_the_journal(gh: GitHubTestServer, tmp_path: Path) -> None:
    import os

    from gates.journal import Journal
    from gates.ledger import Ledger

    ledger = str(tmp_path / "ledger.sqlite")
    Journal(tmp_path / "artifacts").add(Ledger(ledger), "run", {"pipeline": "demo", "verdict": "PASS", "actor": "ci"})
    (tmp_path / "report.json").write_text(json.dumps({"pipeline": "demo", "verdict": "PASS", "reason": "ok"}))
    (tmp_path / "report.md").write_text(_md("PASS", 0))
    env = {
        **os.environ,
        "GITHUB_TOKEN": "s3cret",
        "GITHUB_REPOSITORY": REPO,
        "GATES_PR_NUMBER": str(PR),
        "GITHUB_API_URL": gh.url,
        "GATES_LEDGER": ledger,
        "GATES_ARTIFACTS": str(tmp_path / "artifacts"),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "gates.cli", "publish", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "journal: recorded run" in proc.stderr
    assert [(r.pipeline, r.verdict) for r in Ledger(ledger).runs()] == [("demo", "PASS")]
    assert Journal(tmp_path / "artifacts").pending() == []


@pytest.mark.parametrize(("login", "installation"), [("github-actions[bot]", True), ("gates-ci", False)])
def test_a_comment_someone_else_wrote_with_the_marker_is_never_edited(login: str, installation: bool) -> None:
    """Only gates' own comments are sticky-report candidates: an installation token (Actions) is
    github-actions[bot]; a personal token is whoever GET /user says."""
    with GitHubTestServer(token="s3cret", login=login, installation=installation) as gh:
        gh.add_pull_request(REPO, PR)
        bait = f"{MARKER.format(name='demo')}\nmallory's comment"
        publish_report(_target(gh), "demo", _md("PASS", 0), "PASS", "ok")
        foreign = gh.add_comment(REPO, PR, bait, "mallory")  # newer than gates' own
        publish_report(_target(gh), "demo", _md("FAIL", 1), "FAIL", "no")
        comments = {c["id"]: c for c in gh.comments_on(REPO, PR)}
        assert comments[foreign]["body"] == bait and "_edits" not in comments[foreign]
        (own,) = [c for c in comments.values() if c["user"]["login"] == login]
        assert "(post 1)" in own["body"]


def test_only_a_foreign_marker_means_a_new_comment(gh: GitHubTestServer) -> None:
    bait = f"{MARKER.format(name='demo')}\nbait"
    foreign = gh.add_comment(REPO, PR, bait, "github-actions")  # a look-alike login without [bot]
    publish_report(_target(gh), "demo", _md("PASS", 0), "PASS", "ok")
    comments = gh.comments_on(REPO, PR)
    assert len(comments) == 2 and next(c for c in comments if c["id"] == foreign)["body"] == bait


def test_gates_github_login_names_the_identity(gh: GitHubTestServer) -> None:
    """A GitHub App's installation token: its bot login is configured (GATES_GITHUB_LOGIN)."""
    gh.login = "gates-app[bot]"
    publish_report(_target(gh, login="gates-app[bot]"), "demo", _md("PASS", 0), "PASS", "ok")
    publish_report(_target(gh, login="gates-app[bot]"), "demo", _md("PASS", 1), "PASS", "ok")
    assert len(gh.comments_on(REPO, PR)) == 1
    target = GitHubTarget.from_env(
        {"GITHUB_TOKEN": "t", "GITHUB_REPOSITORY": REPO, "GATES_PR_NUMBER": "7", "GATES_GITHUB_LOGIN": "gates-app[bot]"}
    )
    assert target is not None and target.login == "gates-app[bot]"
