"""The event router on GitHub's real payloads (validated against their schemas) and our variants."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from gates.events.routing import MalformedEvent, diff_request, route
from gates.testing import webhooks_dir

WEBHOOKS = webhooks_dir()
EXAMPLES = WEBHOOKS / "examples"
PIPELINES = ["pipelines/demo.yaml", "pipelines/int8-cpu.yaml"]
INDEX = {"golden_prompts/demo.jsonl": ["pipelines/demo.yaml", "pipelines/int8-cpu.yaml"]}
PR_FILES = ["README.md", "pipelines/demo.yaml"]  # what `git diff base...head` would list for the PR examples

# (example file, expected actions as (kind, pipeline, pr), files the PR changed)
EXPECTED: dict[str, list[tuple[str, str | None, int | None]]] = {
    "check_run/requested_action.payload.json": [],
    "check_run/rerequested.payload.json": [],  # its check is not a gates/<pipeline> check
    "check_suite/rerequested.payload.json": [],
    "deployment/payload.json": [],  # task "deploy", not a gates task
    "deployment_review/requested.payload.json": [],  # environment TST; and "requested" waits anyway
    "deployment_status/payload.json": [],
    "issue_comment/created.1.payload.json": [],  # on an issue, not a PR
    "issue_comment/created.payload.json": [],
    "issue_comment/created.with-organization.payload.json": [],
    "issue_comment/edited.payload.json": [],
    "pull_request/closed.payload.json": [],
    "pull_request/converted_to_draft.payload.json": [],
    "pull_request/labeled.payload.json": [],
    "pull_request/opened.payload.json": [("run", "pipelines/demo.yaml", 2)],
    "pull_request/opened.with-null-body.json": [("run", "pipelines/demo.yaml", 2)],
    "pull_request/reopened.payload.json": [("run", "pipelines/demo.yaml", 2)],
    "pull_request/synchronize.payload.json": [("run", "pipelines/demo.yaml", 2)],
    "pull_request_review/dismissed.payload.json": [],
    "pull_request_review/submitted.payload.json": [],  # state "commented"
    "push/1.payload.json": [],  # a deleted tag
    "push/payload.json": [],
    "push/with-new-branch.payload.json": [],  # default branch, but only README.md changed
    "push/with-organization.payload.json": [],
    "workflow_dispatch/payload.json": [],  # no pipeline input
    "workflow_run/completed.with-pull-requests.payload.json": [],
}


def _schema_validator(event: str, payload: dict[str, Any]) -> Any:
    import jsonschema
    from referencing import Registry, Resource

    schemas = WEBHOOKS / "schemas"
    action = payload.get("action")
    path = schemas / event / (f"{action}.schema.json" if action else "event.schema.json")
    if not path.is_file():
        path = schemas / event / "event.schema.json"

    def retrieve(uri: str) -> Resource:  # refs are relative to the schemas folder ("common/user.schema.json")
        return Resource.from_contents(json.loads((schemas / uri).read_text()))

    schema = json.loads(path.read_text())
    return jsonschema.Draft7Validator(schema, registry=Registry(retrieve=retrieve))  # type: ignore[call-arg]


def _load(rel: str) -> dict[str, Any]:
    return dict(json.loads((EXAMPLES / rel).read_text()))


def test_every_example_is_in_the_table() -> None:
    found = {p.relative_to(EXAMPLES).as_posix() for p in EXAMPLES.rglob("*.json")}
    assert found == set(EXPECTED), "a new example payload needs an expected routing"


@pytest.mark.parametrize("rel", sorted(EXPECTED))
def test_example_payload_routes_as_expected(rel: str) -> None:
    event = rel.split("/", 1)[0]
    payload = _load(rel)
    errors = sorted(_schema_validator(event, payload).iter_errors(payload), key=str)
    assert not errors, f"{rel} does not match its schema: {errors[0].message}"
    changed = PR_FILES if diff_request(event, payload) else None
    routed = route(event, payload, changed, INDEX, PIPELINES)
    got = [(a.kind, a.pipeline, a.pr) for a in routed.actions]
    assert got == EXPECTED[rel], routed.reason
    assert routed.reason  # every decision says why, for --dry-run
    for a in routed.actions:
        assert a.sha == payload["pull_request"]["head"]["sha"] and a.actor == payload["sender"]["login"]


def _pr(action: str = "opened", **changes: Any) -> dict[str, Any]:
    payload = _load("pull_request/opened.payload.json")
    payload["action"] = action
    for path, value in changes.items():
        node = payload
        *parents, leaf = path.split("__")
        for p in parents:
            node = node[p]
        node[leaf] = value
    return payload


def _comment(body: str, association: str = "MEMBER", user_type: str = "User") -> dict[str, Any]:
    payload = _load("issue_comment/created.payload.json")
    payload["issue"]["pull_request"] = {"url": "https://api.github.com/repos/Codertocat/Hello-World/pulls/1"}
    payload["comment"]["body"] = body
    payload["comment"]["author_association"] = association
    payload["comment"]["user"]["type"] = user_type
    return payload


def _actions(event: str, payload: Any, changed: list[str] | None = None) -> list[tuple[str, str | None]]:
    return [(a.kind, a.pipeline) for a in route(event, payload, changed, INDEX, PIPELINES).actions]


def test_variants() -> None:
    assert _actions("pull_request", _pr("ready_for_review"), ["pipelines/demo.yaml"]) == [
        ("run", "pipelines/demo.yaml")
    ]
    assert _actions("pull_request", _pr(pull_request__draft=True), ["pipelines/demo.yaml"]) == []
    # a data file used by two pipelines runs both; a deleted pipeline is not run
    assert _actions("pull_request", _pr(), ["golden_prompts/demo.jsonl", "pipelines/gone.yaml"]) == [
        ("run", "pipelines/demo.yaml"),
        ("run", "pipelines/int8-cpu.yaml"),
    ]
    assert _actions("pull_request", _pr(), ["pipelines/sub/x.yaml", "docs/pipelines/y.yaml"]) == []


def test_fork_pull_request_gets_a_comment_not_a_run() -> None:
    fork = _pr()
    fork["pull_request"]["head"]["repo"] = copy.deepcopy(fork["pull_request"]["head"]["repo"])
    fork["pull_request"]["head"]["repo"]["full_name"] = "mallory/Hello-World"
    routed = route("pull_request", fork, ["pipelines/demo.yaml"], INDEX, PIPELINES)
    assert [a.kind for a in routed.actions] == ["comment"]
    assert "fork" in routed.actions[0].message and "self-hosted" in routed.actions[0].message


def test_push_to_default_branch_with_pipeline_change() -> None:
    push = _load("push/with-new-branch.payload.json")
    push["commits"][0]["modified"] = ["pipelines/int8-cpu.yaml"]
    push["commits"][0]["removed"] = ["pipelines/demo.yaml"]
    routed = route("push", push, None, INDEX, PIPELINES)
    assert [(a.kind, a.pipeline, a.sha) for a in routed.actions] == [("run", "pipelines/int8-cpu.yaml", push["after"])]
    push["ref"] = "refs/heads/feature"
    assert route("push", push, None, INDEX, PIPELINES).actions == ()


@pytest.mark.parametrize(
    ("body", "association", "expected"),
    [
        ("/gates promote demo", "MEMBER", [("promote", "pipelines/demo.yaml")]),
        ("/gates rollback pipelines/demo.yaml\nbecause p99", "NONE", [("rollback", "pipelines/demo.yaml")]),
        ("/gates promote", "OWNER", [("promote", None)]),
        ("/gates rerun int8-cpu", "COLLABORATOR", [("run", "pipelines/int8-cpu.yaml")]),
        ("/gates rerun", "NONE", [("comment", None)]),  # outsiders cannot spend runner time
        ("/gates frobnicate", "MEMBER", [("comment", None)]),
        ("/gates promote ../../etc/passwd", "MEMBER", [("comment", None)]),
        ("/gates promote nope", "MEMBER", [("comment", None)]),
        ("please /gates promote demo", "MEMBER", []),
        ("", "MEMBER", []),
    ],
)
def test_comment_commands(body: str, association: str, expected: list[tuple[str, str | None]]) -> None:
    assert _actions("issue_comment", _comment(body, association)) == expected


def test_bot_comments_and_edits_are_not_commands() -> None:
    assert _actions("issue_comment", _comment("/gates promote demo", user_type="Bot")) == []
    edited = _comment("/gates promote demo")
    edited["action"] = "edited"
    assert _actions("issue_comment", edited) == []


def test_approvals_deployments_and_dispatch() -> None:
    review = _load("pull_request_review/submitted.payload.json")
    review["review"]["state"] = "approved"
    assert _actions("pull_request_review", review) == [("promote", None)]
    dreview = _load("deployment_review/requested.payload.json")
    dreview.update(action="approved", environment="gates/demo")
    assert _actions("deployment_review", dreview) == [("promote", "pipelines/demo.yaml")]
    dreview["action"] = "rejected"
    assert _actions("deployment_review", dreview) == [("rollback", "pipelines/demo.yaml")]
    dep = _load("deployment/payload.json")
    dep["deployment"].update(task="gates:rollback", payload={"pipeline": "int8-cpu"})
    assert _actions("deployment", dep) == [("rollback", "pipelines/int8-cpu.yaml")]
    dep["deployment"]["task"] = "gates:canary"  # the deployment gates itself reports: no loop
    assert _actions("deployment", dep) == []
    dispatch = _load("workflow_dispatch/payload.json")
    dispatch["inputs"] = {"pipeline": "demo", "action": "promote"}
    assert _actions("workflow_dispatch", dispatch) == [("promote", "pipelines/demo.yaml")]


@pytest.mark.parametrize(
    ("event", "payload", "message"),
    [
        ("pull_request", [], "must be a JSON object"),
        ("pull_request", {"action": "opened"}, "no 'pull_request'"),
        ("pull_request", {"action": "opened", "pull_request": {"draft": False}}, "'pull_request.number'"),
        ("push", {"ref": 5}, "'ref' should be str"),
        ("issue_comment", {"action": "created", "issue": {"pull_request": {}}}, None),
        ("workflow_dispatch", {"inputs": {"pipeline": "demo", "action": "deploy"}}, "run, promote or rollback"),
        ("deployment", {"deployment": {"task": "gates:promote", "payload": {}}}, "payload.pipeline"),
    ],
)
def test_malformed_payloads_are_clear_errors(event: str, payload: Any, message: str | None) -> None:
    try:
        routed = route(event, payload, [], INDEX, PIPELINES)
    except MalformedEvent as exc:
        assert message is None or message in str(exc)
    else:
        assert message is None and routed.actions == ()  # an issue without a PR link is simply not a command


def test_pull_request_without_shas_cannot_be_diffed() -> None:
    payload = _pr()
    del payload["pull_request"]["base"]["sha"]
    with pytest.raises(MalformedEvent, match=r"pull_request\.base\.sha"):
        diff_request("pull_request", payload)


def test_schema_check_is_real() -> None:
    payload = _load("pull_request/opened.payload.json")
    payload["pull_request"]["number"] = "two"
    assert list(_schema_validator("pull_request", payload).iter_errors(payload))


# -- issue 17: hostile payloads and commands ---------------------------------------------------
@pytest.mark.parametrize("sha", ["--output=/tmp/pwned", "-p", "HEAD", "a" * 39, "A" * 40, "0" * 40 + "\n"])
def test_forged_base_sha_is_malformed_not_an_option(sha: str) -> None:
    payload = _pr()
    payload["pull_request"]["base"]["sha"] = sha
    with pytest.raises(MalformedEvent, match="is not a commit SHA"):
        diff_request("pull_request", payload)


def _push_with(**changes: Any) -> dict[str, Any]:
    push = _load("push/with-new-branch.payload.json")
    for key, value in changes.items():
        node = push
        *parents, last = key.split("__")
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        node[last] = value
    return push


@pytest.mark.parametrize(
    ("event", "payload", "message"),
    [
        ("pull_request", lambda: _pr(pull_request__head__repo="evil"), "'pull_request.head.repo'"),
        ("pull_request", lambda: _pr(pull_request__head="x"), "'pull_request.head"),
        ("pull_request", lambda: _pr(pull_request__number=True), "'pull_request.number' should be int"),
        ("push", lambda: _push_with(pusher="mallory"), "'pusher' should be an object"),
        ("push", lambda: _push_with(commits__0__added=5), "'commits[0].added' should be a list of strings"),
        ("push", lambda: _push_with(commits__0__modified=[1, 2]), "'commits[0].modified'"),
        ("push", lambda: _push_with(after="--upload-pack=x"), "'after' is not a commit SHA"),
    ],
)
def test_fields_of_the_wrong_type_are_malformed(event: str, payload: Any, message: str) -> None:
    with pytest.raises(MalformedEvent, match=message.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")):
        route(event, payload(), ["pipelines/demo.yaml"], INDEX, PIPELINES)


@pytest.mark.parametrize(
    "target", ["@org/team", "[click](https://evil.example)", "![x](https://evil.example/p.png)", "demo\n"]
)
def test_user_text_in_replies_is_escaped(target: str) -> None:
    routed = route("issue_comment", _comment(f"/gates promote {target}".strip()), None, INDEX, PIPELINES)
    if target.endswith("\n"):  # the command is its first line: "demo" names the pipeline
        assert [a.pipeline for a in routed.actions] == ["pipelines/demo.yaml"]
        return
    (reply,) = routed.actions
    assert reply.kind == "comment"
    for raw in ("@org/", "[click]", "](https", "![x]"):
        assert raw not in reply.message
    assert "Usage" in reply.message


def test_a_pipeline_name_with_a_trailing_newline_is_not_a_name() -> None:
    dispatch = _load("workflow_dispatch/payload.json")
    dispatch["inputs"] = {"pipeline": "demo\n", "action": "run"}
    with pytest.raises(MalformedEvent, match="is not a pipeline name"):
        route("workflow_dispatch", dispatch, None, INDEX, PIPELINES)


def test_an_approval_without_the_reviewed_commit_is_refused() -> None:
    """Issue 27 item 3: an approval is bound to review.commit_id; without one it promotes nothing."""
    review = _load("pull_request_review/submitted.payload.json")
    review["review"]["state"] = "approved"
    sha = review["review"]["commit_id"]
    assert route("pull_request_review", review).actions[0].sha == sha
    review["review"]["commit_id"] = None
    with pytest.raises(MalformedEvent, match=r"review\.commit_id"):
        route("pull_request_review", review)
