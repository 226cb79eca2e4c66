"""Commit statuses, check runs and deployments of the local GitHub test server (``github_server``).

Kept apart from the server's lifecycle, issues and comments so each module stays readable; the
server class mixes this in and supplies the shared state and object helpers declared below.
"""

from __future__ import annotations

from collections.abc import Iterator, Set
from typing import Any

NOW = "2026-11-23T12:00:00Z"
MAX_BODY = 65536
STATUS_STATES = {"error", "failure", "pending", "success"}
CHECK_CONCLUSIONS = {"action_required", "cancelled", "failure", "neutral", "success", "skipped", "stale", "timed_out"}


# The body fields GitHub accepts for a check run: an update takes all but the commit it is on.
CHECK_RUN_UPDATE_FIELDS = frozenset(
    {"name", "details_url", "external_id", "started_at", "status", "conclusion", "completed_at", "output", "actions"}
)
CHECK_RUN_CREATE_FIELDS = CHECK_RUN_UPDATE_FIELDS | {"head_sha"}


class StatusesAndDeployments:
    ids: Iterator[int]
    statuses: list[dict[str, Any]]
    check_runs: dict[int, dict[str, Any]]
    deployments: dict[int, dict[str, Any]]
    deployment_statuses: list[dict[str, Any]]

    @property
    def url(self) -> str:
        raise NotImplementedError

    def _user(self) -> dict[str, Any]:
        raise NotImplementedError

    def _public(self, obj: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def _repo(self, full_name: str) -> dict[str, Any]:
        raise NotImplementedError

    @staticmethod
    def _check_fields(body: Any, required: set[str], allowed: Set[str]) -> tuple[int, Any, dict[str, str]] | None:
        if not isinstance(body, dict):
            return 400, {"message": "Body should be a JSON object"}, {}
        missing = required - set(body)
        extra = set(body) - allowed
        if missing or extra:
            return (
                422,
                {"message": "Invalid request.", "errors": {"missing": sorted(missing), "unknown": sorted(extra)}},
                {},
            )
        return None

    def _create_status(self, body: Any, full: str, sha: str) -> tuple[int, Any, dict[str, str]]:
        if err := self._check_fields(body, {"state"}, {"state", "target_url", "description", "context"}):
            return err
        if body["state"] not in STATUS_STATES or len(body.get("description") or "") > 140:
            return 422, {"message": "Validation Failed"}, {}
        sid = next(self.ids)
        status = {
            "url": f"{self.url}/repos/{full}/statuses/{sha}",
            "avatar_url": None,
            "id": sid,
            "node_id": f"S_{sid}",
            "state": body["state"],
            "description": body.get("description"),
            "target_url": body.get("target_url"),
            "context": body.get("context", "default"),
            "created_at": NOW,
            "updated_at": NOW,
            "creator": self._user(),
            "_repo": full,
            "_sha": sha,
        }
        self.statuses.append(status)
        return 201, self._public(status), {}

    def _get_combined(self, body: Any, full: str, sha: str) -> tuple[int, Any, dict[str, str]]:
        latest: dict[str, dict[str, Any]] = {}
        for s in self.statuses:
            if s["_repo"] == full and s["_sha"] == sha:
                latest[s["context"]] = self._public(s)
        states = {s["state"] for s in latest.values()}
        state = (
            "failure"
            if states & {"failure", "error"}
            else ("pending" if not states or "pending" in states else "success")
        )
        return 200, {"state": state, "sha": sha, "total_count": len(latest), "statuses": list(latest.values())}, {}

    def _run_json(self, run: dict[str, Any]) -> dict[str, Any]:
        return self._public(run)

    def _create_check_run(self, body: Any, full: str) -> tuple[int, Any, dict[str, str]]:
        allowed = CHECK_RUN_CREATE_FIELDS
        if err := self._check_fields(body, {"name", "head_sha"}, allowed):
            return err
        if body.get("conclusion") is not None and body["conclusion"] not in CHECK_CONCLUSIONS:
            return 422, {"message": "Validation Failed: conclusion"}, {}
        output = body.get("output") or {}
        if output and not {"title", "summary"} <= set(output):
            return 422, {"message": "Validation Failed: output needs title and summary"}, {}
        if len(output.get("summary", "")) > MAX_BODY or len(output.get("text", "") or "") > MAX_BODY:
            return 422, {"message": "Validation Failed: output too long"}, {}
        rid = next(self.ids)
        run = {
            "id": rid,
            "node_id": f"CR_{rid}",
            "url": f"{self.url}/repos/{full}/check-runs/{rid}",
            "html_url": f"https://github.example/{full}/runs/{rid}",
            "details_url": body.get("details_url"),
            "external_id": body.get("external_id", ""),
            "head_sha": body["head_sha"],
            "name": body["name"],
            "status": body.get("status", "queued" if not body.get("conclusion") else "completed"),
            "conclusion": body.get("conclusion"),
            "started_at": NOW,
            "completed_at": NOW if body.get("conclusion") else None,
            "output": {
                "title": output.get("title"),
                "summary": output.get("summary"),
                "text": output.get("text"),
                "annotations_count": 0,
                "annotations_url": f"{self.url}/repos/{full}/check-runs/{rid}/annotations",
            },
            "check_suite": {"id": 1},
            "app": {
                "id": 1,
                "slug": "gates",
                "node_id": "A_1",
                "owner": self._user(),
                "name": "gates",
                "description": "",
                "external_url": "",
                "html_url": "https://github.example/apps/gates",
                "created_at": NOW,
                "updated_at": NOW,
                "permissions": {},
                "events": [],
            },
            "pull_requests": [],
            "_repo": full,
            "_edits": 0,
        }
        self.check_runs[rid] = run
        return 201, self._run_json(run), {}

    def _update_check_run(self, body: Any, full: str, rid: str) -> tuple[int, Any, dict[str, str]]:
        run = self.check_runs.get(int(rid))
        if run is None:
            return 404, {"message": "Not Found"}, {}
        allowed = CHECK_RUN_UPDATE_FIELDS
        if err := self._check_fields(body, set(), allowed):
            return err
        if body.get("conclusion") is not None and body["conclusion"] not in CHECK_CONCLUSIONS:
            return 422, {"message": "Validation Failed: conclusion"}, {}
        for key in ("name", "details_url", "status", "conclusion"):
            if key in body:
                run[key] = body[key]
        if "output" in body:
            run["output"].update({k: body["output"].get(k) for k in ("title", "summary", "text")})
        run["_edits"] += 1
        return 200, self._run_json(run), {}

    def _list_check_runs(self, body: Any, full: str, sha: str) -> tuple[int, Any, dict[str, str]]:
        runs = [self._run_json(r) for r in self.check_runs.values() if r["_repo"] == full and r["head_sha"] == sha]
        return 200, {"total_count": len(runs), "check_runs": runs}, {}

    def _create_deployment(self, body: Any, full: str) -> tuple[int, Any, dict[str, str]]:
        allowed = {
            "ref",
            "task",
            "auto_merge",
            "required_contexts",
            "payload",
            "environment",
            "description",
            "transient_environment",
            "production_environment",
        }
        if err := self._check_fields(body, {"ref"}, allowed):
            return err
        did = next(self.ids)
        dep = {
            "url": f"{self.url}/repos/{full}/deployments/{did}",
            "id": did,
            "node_id": f"D_{did}",
            "sha": body["ref"],
            "ref": body["ref"],
            "task": body.get("task", "deploy"),
            "payload": body.get("payload", {}),
            "original_environment": body.get("environment", "production"),
            "environment": body.get("environment", "production"),
            "description": body.get("description"),
            "creator": self._user(),
            "created_at": NOW,
            "updated_at": NOW,
            "statuses_url": f"{self.url}/repos/{full}/deployments/{did}/statuses",
            "repository_url": f"{self.url}/repos/{full}",
            "transient_environment": False,
            "production_environment": True,
            "_repo": full,
        }
        self.deployments[did] = dep
        return 201, self._public(dep), {}

    def _list_deployments(self, body: Any, full: str) -> tuple[int, Any, dict[str, str]]:
        return 200, [self._public(d) for d in self.deployments.values() if d["_repo"] == full], {}

    def _create_deployment_status(self, body: Any, full: str, did: str) -> tuple[int, Any, dict[str, str]]:
        if int(did) not in self.deployments:
            return 404, {"message": "Not Found"}, {}
        allowed = {"state", "target_url", "log_url", "description", "environment", "environment_url", "auto_inactive"}
        if err := self._check_fields(body, {"state"}, allowed):
            return err
        sid = next(self.ids)
        status = {
            "url": f"{self.url}/repos/{full}/deployments/{did}/statuses/{sid}",
            "id": sid,
            "node_id": f"DS_{sid}",
            "state": body["state"],
            "creator": self._user(),
            "description": body.get("description", ""),
            "environment": body.get("environment", "production"),
            "target_url": body.get("target_url", ""),
            "created_at": NOW,
            "updated_at": NOW,
            "deployment_url": self.deployments[int(did)]["url"],
            "repository_url": f"{self.url}/repos/{full}",
        }
        self.deployment_statuses.append(status)
        return 201, status, {}
