"""GitHub events to gate actions: a pure function of (event name, payload, changed files, index).

Nothing here touches the network, git or the ledger: the caller supplies the files a push or
PR changed (``changed_files``; for PRs from ``git diff base...head``, for pushes from the
payload's commit lists) and which pipelines use which data files (``index``). So every routing
decision can be tested on the real payloads GitHub sends.

Routing rules (what a reviewer can expect):

- ``pull_request`` opened / synchronize / reopened / ready_for_review, not a draft, changing
  ``pipelines/*.yaml`` or a data file a pipeline uses: ``run`` each affected pipeline at the
  head SHA. A PR from a fork gets a ``comment`` asking a maintainer to run it, never a run
  (self-hosted runners must not execute untrusted code).
- ``push`` to the default branch: ``run`` each affected pipeline at ``after``.
- ``issue_comment`` created on a PR whose body starts with ``/gates``: ``rerun``, ``promote``,
  ``rollback`` (optionally naming one pipeline); anything else after ``/gates`` gets a usage reply.
  Edited comments and bots are ignored (an edit must not replay a command).
- ``pull_request_review`` submitted with state ``approved``: ``promote`` the PR's pipelines
  (subject to authorization like a comment).
- ``deployment_review`` approved / rejected for an environment ``gates/<pipeline>``:
  ``promote`` / ``rollback``; ``deployment`` created with task ``gates:promote`` or
  ``gates:rollback`` and ``payload.pipeline``.
- ``workflow_dispatch`` with inputs ``pipeline`` and ``action`` (run | promote | rollback).
- ``check_run`` / ``check_suite`` rerequested for a ``gates/<pipeline>`` check: ``rerun``.
- Everything else: no action (with the reason, for ``--dry-run``).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import re
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

from gates.errors import BadInputError
from gates.report.escape import md_inline

PR_ACTIONS = {"opened", "synchronize", "reopened", "ready_for_review"}
COMMANDS = {"rerun", "promote", "rollback"}
TRUSTED_ASSOCIATIONS = {"OWNER", "MEMBER", "COLLABORATOR"}  # promote/rollback have their own authorization
PIPELINE_GLOB = "pipelines/*.yaml"
_PIPELINE_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")  # fullmatch: "$" would accept a trailing newline
_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")  # SHA-1 or SHA-256 object names: never read as a git option


class MalformedEvent(BadInputError):
    """The payload lacks a field its event must have; the message names the key path."""


class ActionKind(StrEnum):
    """What an event asks gates to do."""

    RUN = "run"
    PROMOTE = "promote"
    ROLLBACK = "rollback"
    COMMENT = "comment"


@dataclasses.dataclass(frozen=True)
class Action:
    kind: ActionKind
    pipeline: str | None  # a pipeline file path (pipelines/x.yaml), or None: "the PR's pipelines"
    repository: str
    actor: str
    pr: int | None = None
    sha: str | None = None
    message: str = ""  # for comments: the text; otherwise why this action was chosen

    def describe(self) -> str:
        where = f" PR #{self.pr}" if self.pr else ""
        at = f" at {self.sha[:12]}" if self.sha else ""
        what = self.pipeline or "(the PR's pipelines)"
        if self.kind == ActionKind.COMMENT:
            return f"comment on{where}: {self.message}"
        return f"{self.kind} {what}{where}{at} by {self.actor}: {self.message}"


@dataclasses.dataclass(frozen=True)
class Routed:
    actions: tuple[Action, ...]
    reason: str  # why these (or why none)


@dataclasses.dataclass(frozen=True)
class DiffRequest:
    """What the caller must diff for a pull request (the payload does not list files)."""

    base: str
    head: str


def get(payload: Mapping[str, Any], path: str, kind: type | tuple[type, ...] = object) -> Any:
    """``payload[a][b]…`` for ``path`` 'a.b', or MalformedEvent naming the missing or mistyped key."""
    node: Any = payload
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise MalformedEvent(f"event payload has no {path!r} (missing {part!r})")
        node = node[part]
    if not isinstance(node, kind) or (isinstance(node, bool) and bool not in _kinds(kind)):  # true is no PR number
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise MalformedEvent(f"event payload key {path!r} should be {names}, got {type(node).__name__}")
    return node


def _kinds(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def diff_request(name: str, payload: Mapping[str, Any]) -> DiffRequest | None:
    """The commits to diff for this event, if routing it needs the changed files from git."""
    action = payload.get("action")
    if name == "pull_request" and isinstance(action, str) and action in PR_ACTIONS:
        return DiffRequest(commit_sha(payload, "pull_request.base.sha"), commit_sha(payload, "pull_request.head.sha"))
    return None


def commit_sha(payload: Mapping[str, Any], path: str, optional: bool = False) -> Any:
    """A commit id from the payload, checked to be one (hex): it is handed to git."""
    value = get(payload, path, (str, type(None)) if optional else str)
    if value is not None and not _SHA.fullmatch(value):
        raise MalformedEvent(f"event payload key {path!r} is not a commit SHA: {value[:80]!r}")
    return value


def _strings(value: Any, path: str) -> list[str]:
    """A list of strings from the payload (file lists), or MalformedEvent naming the key."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise MalformedEvent(f"event payload key {path!r} should be a list of strings")
    return value


def affected_pipelines(changed: Sequence[str], index: Mapping[str, Sequence[str]]) -> list[str]:
    """Pipeline files touched directly, plus pipelines whose data files (``index``) changed."""
    out: list[str] = []
    for path in changed:
        if fnmatch.fnmatchcase(path, PIPELINE_GLOB) and path.count("/") == 1:
            out.append(path)
        for pipeline in index.get(path, ()):
            out.append(pipeline)
    return sorted(set(out))


def route(
    name: str,
    payload: Any,
    changed_files: Sequence[str] | None = None,
    index: Mapping[str, Sequence[str]] | None = None,
    pipelines: Sequence[str] = (),
) -> Routed:
    """Actions for one delivery. ``pipelines``: the pipeline files that exist (for names in commands)."""
    if not isinstance(payload, Mapping):
        raise MalformedEvent(f"event payload must be a JSON object, got {type(payload).__name__}")
    index = index or {}
    handler = _HANDLERS.get(name)
    if handler is None:
        return Routed((), f"event {name!r} needs no action")
    return handler(payload, list(changed_files or ()), index, list(pipelines))


def _repo(payload: Mapping[str, Any]) -> str:
    return str(get(payload, "repository.full_name", str))


def _sender(payload: Mapping[str, Any]) -> str:
    return str(get(payload, "sender.login", str))


def _pull_request(payload: Mapping[str, Any], changed: list[str], index: Any, pipelines: list[str]) -> Routed:
    action = get(payload, "action", str)
    pr = get(payload, "pull_request", Mapping)
    if action not in PR_ACTIONS:
        return Routed((), f"pull_request {action} needs no gate run")
    if pr.get("draft"):
        return Routed((), "draft pull request: gates run when it is ready for review")
    number = get(payload, "pull_request.number", int)
    head_sha = commit_sha(payload, "pull_request.head.sha")
    repo = _repo(payload)
    affected = affected_pipelines(changed, index)
    affected = [p for p in affected if not pipelines or p in pipelines]  # deleted files are not run
    if not affected:
        return Routed((), f"PR #{number} changes no pipeline or pipeline data ({len(changed)} files changed)")
    head_repo = get(payload, "pull_request.head", Mapping).get("repo") or {}
    if not isinstance(head_repo, Mapping):
        raise MalformedEvent("event payload key 'pull_request.head.repo' should be an object or null")
    if head_repo.get("full_name") != repo:  # a fork (or a deleted head repo): never run its code here
        fork = head_repo.get("full_name")
        text = (
            f"This pull request comes from a fork ({md_inline(fork, 200) if isinstance(fork, str) else 'deleted'}). "
            "gates does not run code from forks on self-hosted GPU runners. A maintainer can review the "
            "change and run the gate from a branch of this repository."
        )
        return Routed((Action(ActionKind.COMMENT, None, repo, _sender(payload), number, head_sha, text),), "fork PR")
    actions = tuple(
        Action(ActionKind.RUN, p, repo, _sender(payload), number, head_sha, f"pull_request {action}") for p in affected
    )
    return Routed(actions, f"PR #{number} changes {len(affected)} pipeline(s)")


def _push(payload: Mapping[str, Any], changed: list[str], index: Any, pipelines: list[str]) -> Routed:
    ref = get(payload, "ref", str)
    default = get(payload, "repository.default_branch", str)
    if payload.get("deleted"):
        return Routed((), f"push deleted {ref}")
    if ref != f"refs/heads/{default}":
        return Routed((), f"push to {ref}, not the default branch {default}")
    files = list(changed)
    for i, commit in enumerate(get(payload, "commits", list)):
        if not isinstance(commit, Mapping):
            raise MalformedEvent(f"event payload key 'commits[{i}]' should be an object")
        for key in ("added", "modified"):  # removed files are not run
            files.extend(_strings(commit.get(key), f"commits[{i}].{key}"))
    affected = [p for p in affected_pipelines(files, index) if not pipelines or p in pipelines]
    if not affected:
        return Routed((), f"push to {default} changes no pipeline or pipeline data")
    sha = commit_sha(payload, "after")
    pusher = payload.get("pusher") or {}
    if not isinstance(pusher, Mapping):
        raise MalformedEvent("event payload key 'pusher' should be an object")
    who = str(pusher.get("name") or _sender(payload))
    repo = _repo(payload)
    return Routed(
        tuple(Action(ActionKind.RUN, p, repo, who, None, sha, f"push to {default}") for p in affected), "push"
    )


def _resolve(name: str | None, pipelines: list[str]) -> str | None:
    """A pipeline named in a command: 'x', 'x.yaml' or 'pipelines/x.yaml' -> 'pipelines/x.yaml'."""
    if name is None:
        return None
    stem = name.removeprefix("pipelines/").removesuffix(".yaml")
    if not _PIPELINE_NAME.fullmatch(stem):
        raise MalformedEvent(f"{name!r} is not a pipeline name")
    path = f"pipelines/{stem}.yaml"
    if pipelines and path not in pipelines:
        raise MalformedEvent(f"no pipeline {path} in this repository")
    return path


USAGE = "Usage: `/gates rerun [pipeline]`, `/gates promote [pipeline]`, `/gates rollback [pipeline]`."


def _issue_comment(payload: Mapping[str, Any], changed: list[str], index: Any, pipelines: list[str]) -> Routed:
    action = get(payload, "action", str)
    if action != "created":
        return Routed((), f"issue_comment {action}: only new comments are commands (an edit must not replay one)")
    issue = get(payload, "issue", Mapping)
    if not issue.get("pull_request"):
        return Routed((), "comment on an issue, not a pull request")
    body = get(payload, "comment.body", (str, type(None))) or ""
    user = get(payload, "comment.user", Mapping)
    if user.get("type") == "Bot":
        return Routed((), "comment by a bot")
    first = body.strip().splitlines()[0].strip() if body.strip() else ""
    words = first.split()
    if not words or words[0] != "/gates":
        return Routed((), "comment is not a /gates command")
    number = get(payload, "issue.number", int)
    repo, who = _repo(payload), str(get(payload, "comment.user.login", str))
    if len(words) < 2 or words[1] not in COMMANDS or len(words) > 3:
        return Routed((Action(ActionKind.COMMENT, None, repo, who, number, None, USAGE),), f"unknown command {first!r}")
    try:
        pipeline = _resolve(words[2] if len(words) == 3 else None, pipelines)
    except MalformedEvent as exc:  # a typo in a command is answered, not an error of the delivery
        # escaped: the text quotes the commenter (`@org/team` must not ping, a link must not render)
        return Routed(
            (Action(ActionKind.COMMENT, None, repo, who, number, None, f"{md_inline(str(exc))}. {USAGE}"),), str(exc)
        )
    kind = ActionKind.RUN if words[1] == "rerun" else ActionKind(words[1])
    association = str(get(payload, "comment", Mapping).get("author_association") or "NONE")
    if kind == ActionKind.RUN and association not in TRUSTED_ASSOCIATIONS:  # a rerun spends GPU time on our runners
        text = f"`/gates rerun` is for members and collaborators of this repository ({md_inline(association.lower())})."
        return Routed((Action(ActionKind.COMMENT, None, repo, who, number, None, text),), "rerun by an outside user")
    return Routed((Action(kind, pipeline, repo, who, number, None, f"comment {first!r}"),), "PR command")


def _review(payload: Mapping[str, Any], changed: list[str], index: Any, pipelines: list[str]) -> Routed:
    action = get(payload, "action", str)
    state = str(get(payload, "review.state", str)).lower()
    if action != "submitted" or state != "approved":
        return Routed((), f"pull_request_review {action} ({state}) needs no action")
    if get(payload, "review.user", Mapping).get("type") == "Bot":
        return Routed((), "review by a bot")
    number = get(payload, "pull_request.number", int)
    sha = commit_sha(payload, "review.commit_id")  # the approval is bound to the commit it reviewed
    who = str(get(payload, "review.user.login", str))
    return Routed((Action(ActionKind.PROMOTE, None, _repo(payload), who, number, sha, "review approved"),), "approval")


def _environment_pipeline(env: str, pipelines: list[str]) -> str | None:
    if not env.startswith("gates/"):
        return None
    return _resolve(env.removeprefix("gates/"), pipelines)


def _deployment_review(payload: Mapping[str, Any], changed: list[str], index: Any, pipelines: list[str]) -> Routed:
    action = get(payload, "action", str)
    env = str(get(payload, "environment", str))
    pipeline = _environment_pipeline(env, pipelines)
    if pipeline is None:
        return Routed((), f"deployment_review for environment {env!r}, not a gates/<pipeline> environment")
    kind = {"approved": ActionKind.PROMOTE, "rejected": ActionKind.ROLLBACK}.get(action)
    if kind is None:
        return Routed((), f"deployment_review {action}: waiting for a reviewer")
    who = str(get(payload, "sender.login", str))
    return Routed((Action(kind, pipeline, _repo(payload), who, None, None, f"deployment review {action}"),), action)


def _deployment(payload: Mapping[str, Any], changed: list[str], index: Any, pipelines: list[str]) -> Routed:
    task = str(get(payload, "deployment.task", str))
    kind = {"gates:promote": ActionKind.PROMOTE, "gates:rollback": ActionKind.ROLLBACK}.get(task)
    if kind is None:
        return Routed((), f"deployment task {task!r} is not a gates task")
    data = get(payload, "deployment.payload", (Mapping, str))
    name = data.get("pipeline") if isinstance(data, Mapping) else None
    if not isinstance(name, str):
        raise MalformedEvent("deployment with a gates task needs 'deployment.payload.pipeline'")
    sha = commit_sha(payload, "deployment.sha")
    who = str(get(payload, "deployment.creator.login", str))
    pipeline = _resolve(name, pipelines)
    return Routed((Action(kind, pipeline, _repo(payload), who, None, sha, f"deployment {task}"),), task)


def _dispatch(payload: Mapping[str, Any], changed: list[str], index: Any, pipelines: list[str]) -> Routed:
    inputs = payload.get("inputs") or {}
    if not isinstance(inputs, Mapping):
        raise MalformedEvent("event payload key 'inputs' should be an object")
    if "pipeline" not in inputs:
        return Routed((), "workflow_dispatch without a 'pipeline' input")
    word = str(inputs.get("action") or "run")
    if word not in {"run", "promote", "rollback"}:
        raise MalformedEvent(f"workflow_dispatch input 'action' must be run, promote or rollback, got {word!r}")
    pipeline = _resolve(str(inputs["pipeline"]), pipelines)
    who = _sender(payload)
    return Routed(
        (Action(ActionKind(word), pipeline, _repo(payload), who, None, None, "workflow_dispatch"),), "dispatch"
    )


def _check(payload: Mapping[str, Any], changed: list[str], index: Any, pipelines: list[str]) -> Routed:
    action = get(payload, "action", str)
    key = "check_run" if "check_run" in payload else "check_suite"
    if action != "rerequested":
        return Routed((), f"{key} {action} needs no action")
    if key == "check_suite":
        return Routed((), "check_suite rerequested: gates reruns single gates/<pipeline> check runs")
    name = str(get(payload, "check_run.name", str))
    if not name.startswith("gates/"):
        return Routed((), f"check run {name!r} is not a gates check")
    pipeline = _resolve(name.removeprefix("gates/"), pipelines)
    prs = get(payload, "check_run.pull_requests", list)
    number = prs[0].get("number") if prs and isinstance(prs[0], Mapping) else None
    if number is not None and (not isinstance(number, int) or isinstance(number, bool)):
        raise MalformedEvent("event payload key 'check_run.pull_requests[0].number' should be int")
    sha = commit_sha(payload, "check_run.head_sha")
    return Routed(
        (Action(ActionKind.RUN, pipeline, _repo(payload), _sender(payload), number, sha, "check rerequested"),), key
    )


_HANDLERS = {
    "pull_request": _pull_request,
    "push": _push,
    "issue_comment": _issue_comment,
    "pull_request_review": _review,
    "deployment_review": _deployment_review,
    "deployment": _deployment,
    "workflow_dispatch": _dispatch,
    "check_run": _check,
    "check_suite": _check,
}
