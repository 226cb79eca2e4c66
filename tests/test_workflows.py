"""The GitHub workflows: triggers, runners, least privilege, pinned actions, no fork code on GPU runners."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
UNTRUSTED = re.compile(
    r"\$\{\{\s*github\.event\.(comment\.body|issue\.title|issue\.body|pull_request\.title|pull_request\.body|"
    r"pull_request\.head\.ref|review\.body|head_commit\.message)"
)


def load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as a boolean
    return dict(data)


REUSABLE = ["gates-pr.yml", "gates-promote.yml", "gates-recheck.yml"]


@pytest.mark.parametrize("name", ["gates.yml", "promote.yml", "ci.yml", "release.yml", *REUSABLE])
def test_common_properties(name: str) -> None:
    wf = load(name)
    assert "permissions" in wf, "top-level permissions must be explicit (least privilege)"
    assert wf["permissions"] in ({}, {"contents": "read"})
    for job_name, job in wf["jobs"].items():
        granted = job.get("permissions", wf["permissions"])
        assert granted != "write-all" and all(v in ("read", "write", "none") for v in granted.values())
        assert job.get("timeout-minutes"), f"{name}:{job_name} needs a timeout"
        for step in job.get("steps", []):
            if "uses" in step and step["uses"] != "./":  # ./ is this repository's action.yml, at the same commit
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", step["uses"]), f"{step['uses']} is not pinned"
            if "actions/checkout" in step.get("uses", ""):
                assert step.get("with", {}).get("persist-credentials") is False
            # untrusted text is never interpolated into a shell script (script injection)
            assert not UNTRUSTED.search(step.get("run", "")), f"{name}:{job_name} interpolates untrusted input"


def test_gates_workflow_runs_changed_pipelines_on_gpu_runners_never_forks() -> None:
    wf = load("gates.yml")
    pr = wf["on"]["pull_request"]
    assert set(pr["paths"]) == {"pipelines/**", "golden_prompts/**"}
    assert {"opened", "synchronize", "reopened", "ready_for_review"} <= set(pr["types"])
    plan, gate, notice = wf["jobs"]["plan"], wf["jobs"]["gate"], wf["jobs"]["fork-notice"]
    assert plan["runs-on"] == "ubuntu-latest" and "gates.events.plan" in plan["steps"][-1]["run"]
    assert "head.repo.full_name == github.repository" in plan["if"] and gate["needs"] == "plan"
    assert gate["runs-on"][:2] == ["self-hosted", "gpu"] and "matrix.arch" in gate["runs-on"][2]
    assert set(gate["strategy"]["matrix"]) == {"pipeline", "arch"}
    assert gate["env"]["GATES_GPU_ARCH"] == "${{ matrix.arch }}"  # each run recorded per architecture
    assert gate["permissions"] == {"contents": "read", "pull-requests": "write", "statuses": "write"}
    assert any(s.get("uses") == "./" for s in gate["steps"])  # the gate runs through action.yml
    # the pull_request_target job has write access, so it must never check out or run the PR's code
    assert "pull_request_target" in notice["if"] and "!= github.repository" in notice["if"]
    assert notice["runs-on"] == "ubuntu-latest"
    assert not any("uses" in s or "make" in s.get("run", "") for s in notice["steps"])


def test_promote_workflow_routes_through_handle_event_with_reviewers() -> None:
    wf = load("promote.yml")
    assert wf["on"]["issue_comment"]["types"] == ["created"]
    assert "pull_request_review" in wf["on"] and "workflow_dispatch" in wf["on"]
    promote, rollback = wf["jobs"]["promote"], wf["jobs"]["rollback"]
    assert promote["environment"] == "production" and "environment" not in rollback
    for job in (promote, rollback, wf["jobs"]["rerun"]):
        assert job["runs-on"] == ["self-hosted", "gpu"]
        assert any('handle-event --name "$GITHUB_EVENT_NAME" --payload "$GITHUB_EVENT_PATH"' in s.get("run", "")
                   for s in job["steps"])  # fmt: skip
    for job in (promote, rollback):  # the default branch: no ref to the PR's code
        checkout = next(s for s in job["steps"] if "actions/checkout" in s.get("uses", ""))
        assert "ref" not in checkout["with"]
    assert "same_repo == 'true'" in wf["jobs"]["rerun"]["if"]
    assert wf["concurrency"]["cancel-in-progress"] is False


def test_ci_workflow_runs_make_test_on_hosted_runner() -> None:
    job = load("ci.yml")["jobs"]["test"]
    assert job["runs-on"] == "ubuntu-latest" and any("make test" in s.get("run", "") for s in job["steps"])
    # every Python pyproject allows is tested
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires == ">=3.11,<3.13" and job["strategy"]["matrix"]["python"] == ["3.11", "3.12"]
    setup = next(s for s in job["steps"] if "actions/setup-python" in s.get("uses", ""))
    assert setup["with"]["python-version"] == "${{ matrix.python }}"


TRUSTED_ASSOCIATIONS = (
    'contains(fromJSON(\'["OWNER", "MEMBER", "COLLABORATOR"]\'), github.event.comment.author_association)'
)


def comment_gate(wf: dict[str, Any], job_name: str) -> str:
    """How a comment-triggered job on a self-hosted runner is kept from strangers: '' if it is not."""
    job = wf["jobs"][job_name]
    if "environment" in job:
        return "environment"  # required reviewers approve before a runner is taken
    if TRUSTED_ASSOCIATIONS in job.get("if", ""):
        return "author_association"
    needs = job.get("needs", [])
    for need in [needs] if isinstance(needs, str) else needs:
        if wf["jobs"][need]["runs-on"] == "ubuntu-latest" and comment_gate(wf, need):
            return f"hosted job {need}"
    return ""


@pytest.mark.parametrize("name", ["gates.yml", "promote.yml"])
def test_no_comment_from_a_stranger_starts_a_self_hosted_job(name: str) -> None:
    wf = load(name)
    if "issue_comment" not in wf["on"]:
        return
    for job_name, job in wf["jobs"].items():
        on_gpu = job["runs-on"] != "ubuntu-latest"
        reachable = "issue_comment" in job.get("if", "issue_comment") or "needs" in job
        if on_gpu and reachable:
            assert comment_gate(wf, job_name), f"{name}:{job_name} starts a self-hosted runner for any commenter"


def test_promotion_requires_every_architecture_the_gate_runs_on() -> None:
    """A commit's verdict is the conjunction of its runs per architecture: promote must know them all."""
    matrix = load("gates.yml")["jobs"]["gate"]["strategy"]["matrix"]["arch"]
    promote = load("promote.yml")["jobs"]["promote"]
    assert "vars.GATES_GPU_ARCHS || '[\"h100\"]'" in matrix
    assert promote["env"]["GATES_GPU_ARCHS"] == "${{ vars.GATES_GPU_ARCHS || '[\"h100\"]' }}"


@pytest.mark.parametrize("name", REUSABLE)
def test_reusable_workflows_install_the_pinned_release_never_this_checkout(name: str) -> None:
    """Issue 31: a consumer calls these with the release it pins; nothing runs `make install` or a checkout's gates."""
    wf = load(name)
    call = wf["on"]["workflow_call"]
    assert call["inputs"]["gates-package"]["required"] is True and "ledger-url" in call["secrets"]
    for job in wf["jobs"].values():
        for step in job.get("steps", []):
            run = step.get("run", "")
            assert "make install" not in run and ".venv/bin" not in run and "uses: ./" not in run
            assert "${{" not in run, "inputs reach scripts through env only"
            if "pip install" in run and "--no-deps" not in run:
                assert 'python3 -m venv "$venv"' in run or "pydantic" in run  # its own venv, never the system's
        if job["runs-on"] != "ubuntu-latest":
            assert job["runs-on"][:2] == ["self-hosted", "gpu"]


def test_the_reusable_pr_gate_keeps_forks_off_gpu_runners_and_plans_on_a_hosted_one() -> None:
    wf = load("gates-pr.yml")
    plan, gate, notice = wf["jobs"]["plan"], wf["jobs"]["gate"], wf["jobs"]["fork-notice"]
    assert plan["runs-on"] == "ubuntu-latest" and "head.repo.full_name == github.repository" in plan["if"]
    assert '--no-deps "$GATES_PACKAGE"' in plan["steps"][-1]["run"]  # the planner: no torch, no engine
    assert gate["needs"] == "plan" and gate["runs-on"][:2] == ["self-hosted", "gpu"]
    assert gate["permissions"] == {"contents": "read", "pull-requests": "write", "statuses": "write"}
    assert "pull_request_target" in notice["if"] and not any("uses" in st for st in notice["steps"])


def test_the_reusable_promotion_gates_comments_like_promote_yml() -> None:
    wf = load("gates-promote.yml")
    promote, rollback = wf["jobs"]["promote"], wf["jobs"]["rollback"]
    assert promote["environment"] == "production" and comment_gate(wf, "rollback") == "author_association"
    for job in (promote, rollback):
        assert 'handle-event --name "$GITHUB_EVENT_NAME" --payload "$GITHUB_EVENT_PATH"' in job["steps"][-1]["run"]
        checkout = next(st for st in job["steps"] if "actions/checkout" in st.get("uses", ""))
        assert "ref" not in checkout["with"]  # the default branch
        assert "github.event.inputs.action" in job["if"]  # the caller's dispatch inputs, not workflow_call's


def test_the_reusable_recheck_keeps_going_and_reports_the_worst() -> None:
    run = load("gates-recheck.yml")["jobs"]["recheck"]["steps"][-1]["run"]
    assert 'gates recheck "$p" || rc=$?' in run and 'exit "$rc"' in run
