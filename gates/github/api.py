"""GitHub calls the event handler makes beyond the report: PR head, team membership, replies."""

from __future__ import annotations

from typing import Any

from gates.errors import InfraError
from gates.github.publish import GitHubClient


def _get(client: GitHubClient, path: str) -> Any:
    import github3

    def call() -> Any:
        resp = client.gh.session.get(f"{client.gh.session.base_url}{path}")
        if resp.status_code == 404:
            return None
        if resp.status_code >= 400:
            raise github3.exceptions.error_for(resp)
        return resp.json()

    return client.call(f"GET {path}", call)


def pull_head_sha(client: GitHubClient, pr: int) -> str:
    """The pull request's current head commit (the comment payload does not carry it)."""
    path = f"/repos/{client.target.repository}/pulls/{pr}"
    data = _get(client, path)
    sha = (data or {}).get("head", {}).get("sha")
    if not isinstance(sha, str):
        raise InfraError(f"GitHub GET {path}: no such pull request or no head sha")
    return sha


def is_team_member(client: GitHubClient, org: str, team: str, login: str) -> bool:
    """Active membership of ``login`` in ``org/team`` (a pending invitation is not membership)."""
    data = _get(client, f"/orgs/{org}/teams/{team}/memberships/{login}")
    return bool(data) and data.get("state") == "active"


def post_comment(client: GitHubClient, pr: int, body: str) -> str:
    """A new comment on the PR (replies are not sticky: each answers one command)."""
    base = f"/repos/{client.target.repository}/issues/{pr}"
    issue = client.call(f"GET {base}", lambda: client.repo.issue(pr))
    if issue is None:
        raise InfraError(f"GitHub GET {base}: no such pull request")
    comment = client.call(f"POST {base}/comments", lambda: issue.create_comment(body))
    return str(comment.html_url)
