"""tests/workflow_runner.py evaluates the reusable workflows' ``if:`` and ``${{ }}`` as GitHub does:
checked on the conditions those workflows guard with (forks, drafts, comments, associations)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import yaml

from gates.testing import webhooks_dir
from tests.workflow_runner import condition, interpolate

WORKFLOWS = Path(__file__).resolve().parent.parent / ".github" / "workflows"


def job(workflow: str, name: str) -> dict[str, Any]:
    return dict(yaml.safe_load((WORKFLOWS / workflow).read_text())["jobs"][name])


def ctx(event_name: str, event: dict[str, Any], **more: Any) -> dict[str, Any]:
    github = {"event": event, "event_name": event_name, "repository": event["repository"]["full_name"]}
    return {"github": github, "_ok": True, **more}


def example(kind: str, name: str) -> dict[str, Any]:
    return dict(json.loads((webhooks_dir() / "examples" / kind / name).read_text()))


def test_the_pr_gate_plans_only_for_non_draft_branches_of_the_repository() -> None:
    plan = job("gates-pr.yml", "plan")
    pr = example("pull_request", "opened.payload.json")
    assert condition(plan, ctx("pull_request", pr))
    fork = copy.deepcopy(pr)
    fork["pull_request"]["head"]["repo"]["full_name"] = "mallory/Hello-World"
    assert not condition(plan, ctx("pull_request", fork))
    assert condition(job("gates-pr.yml", "fork-notice"), ctx("pull_request_target", fork))
    draft = copy.deepcopy(pr)
    draft["pull_request"]["draft"] = True
    assert not condition(plan, ctx("pull_request", draft))
    assert not condition(plan, ctx("pull_request_target", pr))


def test_promote_and_rollback_run_for_the_comments_they_name() -> None:
    comment = example("issue_comment", "created.payload.json")
    comment["issue"]["pull_request"] = {"url": "u"}
    comment["comment"]["body"] = "/gates promote"
    promote, rollback = job("gates-promote.yml", "promote"), job("gates-promote.yml", "rollback")
    assert condition(promote, ctx("issue_comment", comment)) and not condition(rollback, ctx("issue_comment", comment))
    on_issue = copy.deepcopy(comment)
    on_issue["issue"].pop("pull_request")
    assert not condition(promote, ctx("issue_comment", on_issue))
    comment["comment"]["body"] = "/gates rollback"
    for association, allowed in (("NONE", False), ("MEMBER", True), ("OWNER", True)):
        comment["comment"]["author_association"] = association
        assert condition(rollback, ctx("issue_comment", comment)) is allowed, association


def test_expressions_give_values_and_strings_as_github_does() -> None:
    gate = job("gates-pr.yml", "gate")
    pr = example("pull_request", "opened.payload.json")
    needs = {"plan": {"outputs": {"pipelines": '["pipelines/a.yaml"]'}}}
    c = ctx("pull_request", pr, needs=needs, inputs={"gpu-archs": '["h100", "l40s"]'}, matrix={"arch": "l40s"})
    assert interpolate(gate["strategy"]["matrix"], c) == {"pipeline": ["pipelines/a.yaml"], "arch": ["h100", "l40s"]}
    assert interpolate(gate["runs-on"], c) == ["self-hosted", "gpu", "l40s"]
    assert condition(gate, c) and not condition(gate, {**c, "needs": {"plan": {"outputs": {"pipelines": "[]"}}}})
    assert interpolate("a ${{ secrets.missing }} b", {**c, "secrets": {}}) == "a  b"  # null is empty in a string
