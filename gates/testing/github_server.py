"""A local GitHub REST server for tests: the endpoints gates calls, with state and shape checks.

It answers what github3.py needs (complete objects: github3 rejects partial ones), keeps state
(comments, statuses, check runs, deployments), checks the auth header and request bodies
(unknown or missing fields are a 422, as GitHub answers), and can be told to fail the next N
calls with a 502 or a secondary rate limit. Every request is logged for assertions.

    with GitHubTestServer(token="t0ken") as gh:
        gh.add_pull_request("octo/repo", 5, head_sha="abc…")
        ... GITHUB_API_URL=gh.url ...
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

from gates.testing.github_statuses import MAX_BODY, NOW, StatusesAndDeployments

OBJECTS = json.loads((Path(__file__).with_name("data") / "github_objects.json").read_text())


@dataclasses.dataclass
class Logged:
    method: str
    path: str
    status: int
    body: Any


class GitHubTestServer(StatusesAndDeployments):
    def __init__(self, token: str = "test-token", login: str = "github-actions[bot]", installation: bool = True):
        self.token = token
        # who the token is: comments it creates are that user's; an installation token (Actions'
        # GITHUB_TOKEN, a GitHub App's) has no GET /user (403 "Resource not accessible by integration")
        self.login = login
        self.installation = installation
        self.lock = threading.Lock()
        self.ids = itertools.count(1000)
        self.repos: dict[str, dict[str, Any]] = {}
        self.issues: dict[tuple[str, int], dict[str, Any]] = {}
        self.comments: dict[int, dict[str, Any]] = {}
        self.statuses: list[dict[str, Any]] = []
        self.check_runs: dict[int, dict[str, Any]] = {}
        self.deployments: dict[int, dict[str, Any]] = {}
        self.deployment_statuses: list[dict[str, Any]] = []
        self.pull_heads: dict[tuple[str, int], str] = {}
        self.team_members: dict[tuple[str, str], set[str]] = {}
        self.log: list[Logged] = []
        self._fail: list[str] = []
        self.hang_s = 2.0
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> GitHubTestServer:
        self._thread.start()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    # -- test controls -----------------------------------------------------------------------
    def fail_next(self, n: int, kind: str = "502") -> None:
        """The next ``n`` calls answer ``kind``: '502', 'secondary_rate_limit' (Retry-After 0),
        'retry_after:<seconds>' (a secondary rate limit asking for that wait), 'hang' (no answer
        for ``hang_s``: a read timeout) or 'drop' (the connection is closed without an answer)."""
        with self.lock:
            self._fail.extend([kind] * n)

    def set_pull_head(self, full_name: str, number: int, sha: str) -> None:
        with self.lock:
            self.pull_heads[(full_name, number)] = sha

    def add_team_member(self, org: str, team: str, login: str) -> None:
        with self.lock:
            self.team_members.setdefault((org, team), set()).add(login)

    def add_pull_request(
        self, full_name: str, number: int, title: str = "Update pipeline", head_sha: str = "0" * 40
    ) -> None:
        with self.lock:
            self.pull_heads[(full_name, number)] = head_sha
            repo = self._repo(full_name)
            issue = copy.deepcopy(OBJECTS["issue"])
            base = f"{self.url}/repos/{full_name}"
            issue.update(
                id=next(self.ids),
                number=number,
                title=title,
                body="",
                url=f"{base}/issues/{number}",
                repository_url=base,
                comments_url=f"{base}/issues/{number}/comments",
                events_url=f"{base}/issues/{number}/events",
                labels_url=f"{base}/issues/{number}/labels{{/name}}",
                html_url=f"https://github.example/{full_name}/pull/{number}",
                comments=0,
                body_html="",  # github3 asks for the full media type
                body_text="",
                closed_by=None,
                pull_request={"url": f"{base}/pulls/{number}"},
            )
            self.issues[(repo["full_name"], number)] = issue

    def comments_on(self, full_name: str, number: int) -> list[dict[str, Any]]:
        with self.lock:
            return [c for c in self.comments.values() if c["_issue"] == (full_name, number)]

    def combined_status(self, full_name: str, sha: str) -> dict[str, dict[str, Any]]:
        """Latest status per context, as GitHub's combined status shows them."""
        out: dict[str, dict[str, Any]] = {}
        with self.lock:
            for s in self.statuses:
                if s["_repo"] == full_name and s["_sha"] == sha:
                    out[s["context"]] = s
        return out

    def add_comment(self, full_name: str, number: int, body: str, login: str) -> int:
        """A comment someone else wrote (not through the API under test); its id."""
        with self.lock:
            status, comment, _ = self._create_comment({"body": body}, full_name, str(number), login)
        assert status == 201, comment
        return int(comment["id"])

    def calls(self, method: str, pattern: str) -> list[Logged]:
        return [c for c in self.log if c.method == method and re.fullmatch(pattern, c.path)]

    # -- objects -----------------------------------------------------------------------------
    def _user(self) -> dict[str, Any]:
        return copy.deepcopy(OBJECTS["user"])

    def _repo(self, full_name: str) -> dict[str, Any]:
        if full_name not in self.repos:
            owner, name = full_name.split("/", 1)
            repo = copy.deepcopy(OBJECTS["repository"])
            old = repo["url"]
            text = json.dumps(repo).replace(old, f"{self.url}/repos/{full_name}")
            text = text.replace("https://github.com/Codertocat/Hello-World", f"https://github.example/{full_name}")
            repo = json.loads(text)
            # the REST shape has a few fields that webhook payloads leave out
            repo.update(
                id=next(self.ids),
                name=name,
                full_name=full_name,
                network_count=0,
                subscribers_count=1,
                permissions={"admin": False, "maintain": False, "push": True, "triage": True, "pull": True},
            )
            repo["owner"]["login"] = owner
            self.repos[full_name] = repo
        return self.repos[full_name]

    # -- HTTP --------------------------------------------------------------------------------
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def _body(self) -> Any:
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                return json.loads(raw) if raw else None

            def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str) -> None:
                with server.lock:
                    fault = server._fail[0] if server._fail and server._fail[0] in ("hang", "drop") else None
                    if fault:
                        server._fail.pop(0)
                if fault == "hang":
                    time.sleep(server.hang_s)
                if fault:
                    self.close_connection = True
                    return
                path = self.path.split("?", 1)[0].rstrip("/")
                headers: dict[str, str]
                try:
                    body = self._body()
                except ValueError:
                    body = None
                    status, payload, headers = 400, {"message": "Problems parsing JSON"}, {}
                else:
                    status, payload, headers = server._dispatch(method, path, self.headers, body)
                with server.lock:
                    server.log.append(Logged(method, path, status, body))
                self._send(status, payload, headers)

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def do_PATCH(self) -> None:
                self._handle("PATCH")

        return Handler

    def _dispatch(self, method: str, path: str, headers: Any, body: Any) -> tuple[int, Any, dict[str, str]]:
        with self.lock:
            kind = self._fail.pop(0) if self._fail else None
        if kind == "502":
            return 502, {"message": "Server Error"}, {}
        if kind is not None and kind.startswith("retry_after:"):
            message = "You have exceeded a secondary rate limit."
            return 403, {"message": message}, {"Retry-After": kind.split(":", 1)[1]}
        if kind == "secondary_rate_limit":
            return (
                403,
                {
                    "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you "
                    "try again.",
                    "documentation_url": "https://docs.github.com/rest/overview/rate-limits",
                },
                {"Retry-After": "0"},
            )
        auth = headers.get("Authorization", "")
        if auth not in (f"token {self.token}", f"Bearer {self.token}"):
            return 401, {"message": "Bad credentials"}, {}
        for pattern, handler in self._routes():
            m = re.fullmatch(pattern, f"{method} {path}")
            if m:
                with self.lock:
                    result: tuple[int, Any, dict[str, str]] = handler(body, *m.groups())
                    return result
        return 404, {"message": "Not Found"}, {}

    def _routes(self) -> list[tuple[str, Any]]:
        repo = r"/repos/([^/]+/[^/]+)"
        return [
            (rf"GET {repo}", self._get_repo),
            (rf"GET {repo}/issues/(\d+)", self._get_issue),
            (rf"GET {repo}/issues/(\d+)/comments", self._list_comments),
            (rf"POST {repo}/issues/(\d+)/comments", self._create_comment),
            (rf"PATCH {repo}/issues/comments/(\d+)", self._edit_comment),
            (rf"POST {repo}/statuses/([0-9a-f]{{7,40}})", self._create_status),
            (rf"GET {repo}/commits/([0-9a-f]{{7,40}})/status", self._get_combined),
            (rf"POST {repo}/check-runs", self._create_check_run),
            (rf"PATCH {repo}/check-runs/(\d+)", self._update_check_run),
            (rf"GET {repo}/commits/([0-9a-f]{{7,40}})/check-runs", self._list_check_runs),
            (rf"POST {repo}/deployments", self._create_deployment),
            (rf"GET {repo}/deployments", self._list_deployments),
            (rf"POST {repo}/deployments/(\d+)/statuses", self._create_deployment_status),
            (rf"GET {repo}/pulls/(\d+)", self._get_pull),
            (r"GET /user", self._get_user),
            (r"GET /orgs/([^/]+)/teams/([^/]+)/memberships/([^/]+)", self._get_membership),
        ]

    def _get_pull(self, body: Any, full: str, number: str) -> tuple[int, Any, dict[str, str]]:
        sha = self.pull_heads.get((self._repo(full)["full_name"], int(number)))
        if sha is None:
            return 404, {"message": "Not Found"}, {}
        return 200, {"number": int(number), "state": "open", "head": {"sha": sha}, "base": {"ref": "main"}}, {}

    def _get_membership(self, body: Any, org: str, team: str, login: str) -> tuple[int, Any, dict[str, str]]:
        if login not in self.team_members.get((org, team), set()):
            return 404, {"message": "Not Found"}, {}
        return 200, {"state": "active", "role": "member", "url": f"{self.url}/orgs/{org}/teams/{team}"}, {}

    def _get_repo(self, body: Any, full: str) -> tuple[int, Any, dict[str, str]]:
        return 200, self._repo(full), {}

    def _issue(self, full: str, number: str) -> dict[str, Any] | None:
        return self.issues.get((self._repo(full)["full_name"], int(number)))

    def _get_issue(self, body: Any, full: str, number: str) -> tuple[int, Any, dict[str, str]]:
        issue = self._issue(full, number)
        return (200, issue, {}) if issue else (404, {"message": "Not Found"}, {})

    def _public(self, comment: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in comment.items() if not k.startswith("_")}

    def _list_comments(self, body: Any, full: str, number: str) -> tuple[int, Any, dict[str, str]]:
        if not self._issue(full, number):
            return 404, {"message": "Not Found"}, {}
        items = [self._public(c) for c in self.comments.values() if c["_issue"] == (full, int(number))]
        return 200, sorted(items, key=lambda c: c["id"]), {}

    def _get_user(self, body: Any) -> tuple[int, Any, dict[str, str]]:
        if self.installation:
            return 403, {"message": "Resource not accessible by integration"}, {}
        user = self._user()
        user["login"] = self.login
        return 200, user, {}

    def _create_comment(
        self, body: Any, full: str, number: str, login: str | None = None
    ) -> tuple[int, Any, dict[str, str]]:
        issue = self._issue(full, number)
        if not issue:
            return 404, {"message": "Not Found"}, {}
        if err := self._check_fields(body, {"body"}, {"body"}):
            return err
        if len(body["body"]) > MAX_BODY:
            return 422, {"message": "Validation Failed", "errors": [{"field": "body", "code": "too_long"}]}, {}
        cid = next(self.ids)
        comment = copy.deepcopy(OBJECTS["comment"])
        comment.update(
            id=cid,
            body=body["body"],
            body_text=body["body"],
            body_html=body["body"],
            url=f"{self.url}/repos/{full}/issues/comments/{cid}",
            issue_url=issue["url"],
            html_url=f"{issue['html_url']}#issuecomment-{cid}",
            created_at=NOW,
            updated_at=NOW,
            _issue=(full, int(number)),
        )
        author = login or self.login
        comment["user"] = dict(comment["user"], login=author, type="Bot" if author.endswith("[bot]") else "User")
        self.comments[cid] = comment
        issue["comments"] += 1
        return 201, self._public(comment), {}

    def _edit_comment(self, body: Any, full: str, cid: str) -> tuple[int, Any, dict[str, str]]:
        comment = self.comments.get(int(cid))
        if comment is None:
            return 404, {"message": "Not Found"}, {}
        if err := self._check_fields(body, {"body"}, {"body"}):
            return err
        if len(body["body"]) > MAX_BODY:
            return 422, {"message": "Validation Failed", "errors": [{"field": "body", "code": "too_long"}]}, {}
        comment.update(body=body["body"], body_text=body["body"], body_html=body["body"], updated_at=NOW)
        comment["_edits"] = comment.get("_edits", 0) + 1
        return 200, self._public(comment), {}
