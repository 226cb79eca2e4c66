"""Posts the report as one sticky PR comment (found by a hidden marker) plus a commit status."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from gates.errors import InfraError
from gates.report.render import MARKER

STATE = {"PASS": "success", "FAIL": "failure", "INCONCLUSIVE": "error"}


@dataclasses.dataclass(frozen=True)
class GitHubTarget:
    api_url: str
    token: str = dataclasses.field(repr=False)  # never printed
    repository: str  # owner/name
    pr: int
    sha: str | None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> GitHubTarget | None:
        token = env.get("GATES_GITHUB_TOKEN") or env.get("GITHUB_TOKEN")
        repo, pr = env.get("GITHUB_REPOSITORY"), env.get("GATES_PR_NUMBER")
        if not (token and repo and pr):
            return None
        return cls(
            env.get("GITHUB_API_URL", "https://api.github.com").rstrip("/"),
            token,
            repo,
            int(pr),
            env.get("GATES_COMMIT_SHA") or None,
        )


def _client(target: GitHubTarget) -> Any:
    import github3

    if target.api_url == "https://api.github.com":
        gh = github3.GitHub(token=target.token)
    else:
        gh = github3.GitHubEnterprise(target.api_url.removesuffix("/api/v3"), token=target.token)
        gh.session.base_url = target.api_url
    return gh


def publish_report(target: GitHubTarget, pipeline: str, markdown: str, verdict: str, reason: str) -> str:
    import github3

    marker = MARKER.format(name=pipeline)
    try:
        gh = _client(target)
        owner, name = target.repository.split("/", 1)
        repo = gh.repository(owner, name)
        issue = repo.issue(target.pr)
        mine = [c for c in issue.comments() if marker in (c.body or "")]
        if mine:
            comment = max(mine, key=lambda c: c.created_at)
            comment.edit(markdown)
        else:
            comment = issue.create_comment(markdown)
        if target.sha:
            repo.create_status(target.sha, STATE[verdict], description=reason[:140], context=f"gates/{pipeline}")
        return str(comment.html_url)
    except github3.exceptions.GitHubException as exc:
        raise InfraError(
            f"posting the report to {target.api_url} ({target.repository}#{target.pr}) failed: {exc}"
        ) from exc
