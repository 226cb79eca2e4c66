"""GitHub calls the event handler makes beyond the report: PR head, team membership, replies."""

from __future__ import annotations

from gates.errors import InfraError
from gates.github.client import GitHubClient


def pull_head_sha(client: GitHubClient, pr: int) -> str:
    """The pull request's current head commit (the comment payload does not carry it)."""
    path = f"/repos/{client.target.repository}/pulls/{pr}"
    data = client.rest("GET", path, missing_ok=True)
    sha = (data or {}).get("head", {}).get("sha")
    if not isinstance(sha, str):
        raise InfraError(f"GitHub GET {path}: no such pull request or no head sha")
    return sha


def is_team_member(client: GitHubClient, org: str, team: str, login: str) -> bool:
    """Active membership of ``login`` in ``org/team`` (a pending invitation is not membership)."""
    data = client.rest("GET", f"/orgs/{org}/teams/{team}/memberships/{login}", missing_ok=True)
    return bool(data) and data.get("state") == "active"


def post_comment(client: GitHubClient, pr: int, body: str) -> str:
    """A new comment on the PR (replies are not sticky: each answers one command)."""
    base = f"/repos/{client.target.repository}/issues/{pr}"
    issue = client.call(f"GET {base}", lambda: client.repo.issue(pr))
    if issue is None:
        raise InfraError(f"GitHub GET {base}: no such pull request")
    comment = client.call(f"POST {base}/comments", lambda: issue.create_comment(body))
    return str(comment.html_url)


# A promotion shows in GitHub as a deployment to environment ``gates/<pipeline>``. Its task is
# not one gates acts on ("gates:promote"/"gates:rollback" are commands), so the ``deployment``
# webhook GitHub sends back for it cannot loop into another promotion.
DEPLOYMENT_TASK = "gates:canary"
DEPLOYMENT_STATES = {
    "promotion_started": "in_progress",
    "step_passed": "in_progress",
    "check_failed": "in_progress",
    "recheck_passed": "in_progress",
    "paused_for_approval": "queued",
    "rollback_requested": "in_progress",
    "promoted": "success",
    "rolled_back": "failure",
}


class DeploymentReporter:
    """Posts a promotion's transitions as statuses of one GitHub deployment (created on first use)."""

    def __init__(self, client: GitHubClient, pipeline: str, ref: str, digest: str | None, url: str | None = None):
        self.client, self.pipeline, self.ref, self.digest, self.url = client, pipeline, ref, digest, url
        self.deployment_id: int | None = None

    def __call__(self, action: str, description: str) -> None:
        gh_state = DEPLOYMENT_STATES.get(action)
        if gh_state is None:
            return
        base = f"/repos/{self.client.target.repository}/deployments"
        if self.deployment_id is None:
            created = self.client.rest(
                "POST",
                base,
                {
                    "ref": self.ref,
                    "task": DEPLOYMENT_TASK,
                    "environment": f"gates/{self.pipeline}",
                    "description": f"canary of {self.pipeline} ({(self.digest or '')[:12]})",
                    "payload": {"pipeline": self.pipeline, "digest": self.digest},
                    "auto_merge": False,
                    "required_contexts": [],  # the gate's own status is what passed; do not re-check contexts
                    "production_environment": True,
                },
            )
            self.deployment_id = int(created["id"])
        body = {"state": gh_state, "description": description[:140], "auto_inactive": gh_state == "success"}
        if self.url:
            body["log_url"] = self.url
        self.client.rest("POST", f"{base}/{self.deployment_id}/statuses", body)
