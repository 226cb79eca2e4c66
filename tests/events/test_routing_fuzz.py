"""Fuzz: any payload for any event routes to actions or a MalformedEvent (exit 2), never an
internal error; real GitHub payloads with fields swapped for junk included."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gates.errors import BadInputError, ExitCode
from gates.events.plan import parse_payload
from gates.events.routing import _HANDLERS, MalformedEvent, diff_request, route
from gates.testing import webhooks_dir

EXAMPLE_TEXT = {
    p.relative_to(webhooks_dir() / "examples").as_posix(): p.read_text()
    for p in (webhooks_dir() / "examples").rglob("*.json")
}
EVENTS = sorted(_HANDLERS)
PIPELINES = ["pipelines/demo.yaml"]
INDEX = {"golden_prompts/demo.jsonl": ["pipelines/demo.yaml"]}
KEYS = [
    "action", "pull_request", "number", "head", "base", "sha", "repo", "full_name", "repository", "sender",
    "login", "draft", "ref", "default_branch", "commits", "added", "modified", "pusher", "name", "after",
    "issue", "comment", "body", "user", "type", "author_association", "review", "state", "commit_id",
    "environment", "deployment", "task", "payload", "pipeline", "creator", "inputs", "check_run",
    "pull_requests", "head_sha", "deleted",
]  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.sampled_from(["opened", "created", "/gates promote demo", "/gates rerun @org/team", "gates/demo", "0" * 40]),
    st.sampled_from(["--output=/tmp/x", "refs/heads/main", "main", "gates:promote", "submitted", "approved"]),
    st.text(max_size=20),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=6),
    max_leaves=40,
)


def _route(event: str, payload: Any) -> None:
    try:
        diff_request(event, payload) if isinstance(payload, dict) else None
        routed = route(event, payload, ["pipelines/demo.yaml"], INDEX, PIPELINES)
    except MalformedEvent as exc:
        assert exc.exit_code == ExitCode.BAD_INPUT
        return
    assert isinstance(routed.reason, str)
    for a in routed.actions:
        assert a.kind in {"run", "promote", "rollback", "comment"} and isinstance(a.describe(), str)
        assert a.pr is None or (isinstance(a.pr, int) and not isinstance(a.pr, bool))


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(EVENTS), JSON)
def test_any_payload_routes_or_is_malformed(event: str, payload: Any) -> None:
    _route(event, payload)


def _paths(node: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [at] if at else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*at, k))
    elif isinstance(node, list):
        for i, v in enumerate(node[:3]):
            out += _paths(v, (*at, i))
    return out


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(EXAMPLE_TEXT)), st.sampled_from(EVENTS), st.data())
def test_real_payloads_with_junk_fields_route_or_are_malformed(name: str, event: str, data: st.DataObject) -> None:
    payload = json.loads(EXAMPLE_TEXT[name])
    event = name.split("/")[0] if name.split("/")[0] in EVENTS and data.draw(st.booleans()) else event
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        paths = _paths(payload)  # again after each change: a replaced subtree has new paths
        if not paths:
            break
        where = data.draw(st.sampled_from(paths))
        node = payload
        for part in where[:-1]:
            node = node[part]
        node[where[-1]] = data.draw(JSON)
    _route(event, payload)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200) | st.integers(min_value=1, max_value=100_000).map(lambda n: b"[" * n + b"]" * n))
def test_any_body_is_json_or_bad_input(blob: bytes) -> None:
    try:
        parse_payload(blob, "body")
    except BadInputError as exc:
        assert exc.exit_code == ExitCode.BAD_INPUT
