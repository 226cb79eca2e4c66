"""The one GitHub client: where to post (``GitHubTarget``) and how (``GitHubClient``).

Through github3.py against ``GITHUB_API_URL`` (github.com or Enterprise); where github3 has no
call for an endpoint we use its session, never a second HTTP stack. Every call is retried with
backoff on 5xx, connection errors and secondary rate limits. Creating the comment is made
idempotent by looking for the marker again before each retry, so a 502 that hid a success
cannot leave two comments.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import quote

from gates.errors import BadInputError, InfraError

T = TypeVar("T")
STATUS_STATE = {"PASS": "success", "FAIL": "failure", "INCONCLUSIVE": "error"}
CHECK_CONCLUSION = {"PASS": "success", "FAIL": "failure", "INCONCLUSIVE": "neutral"}
GITHUB_COM = "https://api.github.com"
ACTIONS_BOT = "github-actions[bot]"  # who Actions' GITHUB_TOKEN writes as
# A secondary rate limit may ask for any wait; we wait at most this long per retry (a gate run
# that sleeps for hours helps no one) and fail with the endpoint named when it asks for more.
MAX_RETRY_AFTER_S = 60.0
_REPOSITORY = re.compile(r"[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}")


def _env_number(env: Mapping[str, str], key: str, default: str, kind: type[int] | type[float], low: float) -> Any:
    """A numeric setting from the environment, or BadInputError naming the variable (never a traceback)."""
    raw = env.get(key) or default
    try:
        value = kind(raw)
    except ValueError:
        raise BadInputError(f"{key}={raw!r} is not a {'whole ' if kind is int else ''}number") from None
    if not low <= value < 1e9:  # no infinities, no negative counts
        raise BadInputError(f"{key}={raw!r} is out of range (at least {low})")
    return value


@dataclasses.dataclass(frozen=True)
class GitHubTarget:
    api_url: str
    token: str = dataclasses.field(repr=False)  # never printed
    repository: str  # owner/name
    pr: int
    sha: str | None
    check_runs: bool = False  # a check run (needs an installation token) instead of a commit status
    details_url: str | None = None
    retries: int = 4
    backoff_s: float = 1.0
    read_timeout_s: float = 10.0  # per request; a hung GitHub is retried like a refused connection
    # gates' own login (GATES_GITHUB_LOGIN): only its comments can be the sticky report. Unset: GET
    # /user for a personal token, else Actions' GITHUB_TOKEN identity (an installation token has no /user)
    login: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> GitHubTarget | None:
        """The PR a gate run reports on (``GITHUB_REPOSITORY``, ``GATES_PR_NUMBER``); None without one."""
        repo, pr = env.get("GITHUB_REPOSITORY"), env.get("GATES_PR_NUMBER")
        if not (repo and pr):
            return None
        number = _env_number(env, "GATES_PR_NUMBER", pr, int, 1)
        details = None
        if env.get("GITHUB_RUN_ID") and env.get("GITHUB_SERVER_URL"):
            details = f"{env['GITHUB_SERVER_URL'].rstrip('/')}/{repo}/actions/runs/{env['GITHUB_RUN_ID']}"
        target = cls.for_repository(env, repo, number, env.get("GATES_COMMIT_SHA") or None)
        if target is None:
            return None
        return dataclasses.replace(
            target,
            check_runs=env.get("GATES_GITHUB_CHECK_RUNS") == "1",
            details_url=env.get("GATES_REPORT_URL") or details,
        )

    @classmethod
    def for_repository(
        cls, env: Mapping[str, str], repository: str, pr: int | None, sha: str | None = None
    ) -> GitHubTarget | None:
        """API base, token and retry settings from the environment for one repository; None without a token."""
        token = env.get("GATES_GITHUB_TOKEN") or env.get("GITHUB_TOKEN")
        if not token:
            return None
        if not _REPOSITORY.fullmatch(repository) or ".." in repository:
            raise BadInputError(f"GITHUB_REPOSITORY must be owner/name, got {repository[:200]!r}")
        return cls(
            api_url=env.get("GITHUB_API_URL", GITHUB_COM).rstrip("/"),
            token=token,
            repository=repository,
            pr=pr or 0,
            sha=sha,
            retries=_env_number(env, "GATES_GITHUB_RETRIES", "4", int, 0),
            backoff_s=_env_number(env, "GATES_GITHUB_BACKOFF_S", "1.0", float, 0),
            read_timeout_s=_env_number(env, "GATES_GITHUB_TIMEOUT_S", "10", float, 0.01),
            login=env.get("GATES_GITHUB_LOGIN") or None,
        )


class GitHubClient:
    """The calls gates makes, each retried; failures name the endpoint."""

    def __init__(self, target: GitHubTarget, sleep: Callable[[float], None] = time.sleep):
        import github3

        self.target = target
        self.sleep = sleep
        if target.api_url == GITHUB_COM:
            self.gh = github3.GitHub(token=target.token)
        else:
            self.gh = github3.GitHubEnterprise(target.api_url, token=target.token)
            self.gh.session.base_url = target.api_url  # the API base as given (…/api/v3 on Enterprise)
        self.gh.session.default_read_timeout = target.read_timeout_s
        if target.check_runs:
            # Check runs need GitHub App installation auth; Actions' GITHUB_TOKEN is such a token.
            self.gh.session.app_installation_token_auth({"token": target.token, "expires_at": "2999-01-01T00:00:00Z"})
        self.owner, self.name = target.repository.split("/", 1)
        self._repo: Any = None
        self._login: str | None = None

    def call(self, endpoint: str, fn: Callable[[], T]) -> T:
        import github3
        import requests

        delay = self.target.backoff_s
        for attempt in range(self.target.retries + 1):
            try:
                return fn()
            except (github3.exceptions.GitHubException, requests.RequestException) as exc:
                # GitHubError: GitHub answered; TransportError (github3's models) and requests'
                # own errors (our REST calls on its session): GitHub was not reached or timed out
                code = getattr(exc, "code", None) or 0
                message = str(getattr(exc, "msg", "") or exc)
                retry_after = _retry_after(exc)
                transient = code >= 500 or code == 429 or (code == 403 and "secondary rate limit" in message.lower())
                transient = transient or not isinstance(exc, github3.exceptions.GitHubError)
                if retry_after is not None and retry_after > MAX_RETRY_AFTER_S:
                    raise InfraError(
                        f"GitHub {endpoint} asks to retry after {retry_after:.0f}s (we wait at most "
                        f"{MAX_RETRY_AFTER_S:.0f}s): {code or ''} {message}; publish later with `gates publish RUN_DIR`"
                    ) from exc
                if not transient or attempt == self.target.retries:
                    raise InfraError(
                        f"GitHub {endpoint} failed after {attempt + 1} attempt(s): {code or ''} {message}".strip()
                    ) from exc
                self.sleep(min(retry_after if retry_after is not None else delay, MAX_RETRY_AFTER_S))
                delay *= 2
        raise AssertionError("unreachable")

    def rest(self, method: str, path: str, body: Any = None, missing_ok: bool = False, headers: Any = None) -> Any:
        """One REST call github3 has no method for, on github3's session, retried like the others.

        ``missing_ok``: a 404 answers None instead of an error.
        """
        import github3

        def call() -> Any:
            resp = self.gh.session.request(
                method, f"{self.gh.session.base_url}{path}", json=body, headers=headers or {}
            )
            if missing_ok and resp.status_code == 404:
                return None
            if resp.status_code >= 400:
                raise github3.exceptions.error_for(resp)
            return resp.json()

        return self.call(f"{method} {path}", call)

    @property
    def repo(self) -> Any:
        if self._repo is None:
            self._repo = self.call(
                f"GET /repos/{self.target.repository}", lambda: self.gh.repository(self.owner, self.name)
            )
        return self._repo

    def upsert_comment(self, marker: str, body: str) -> str:
        base = f"/repos/{self.target.repository}/issues"
        issue = self.call(f"GET {base}/{self.target.pr}", lambda: self.repo.issue(self.target.pr))
        if issue is None:
            raise InfraError(f"GitHub GET {base}/{self.target.pr}: no such pull request")

        me = self.own_login()

        def find() -> Any:  # a marker anyone can type: only gates' own comments are candidates
            mine = [c for c in issue.comments() if marker in (c.body or "") and _author(c) == me]
            return max(mine, key=lambda c: (c.created_at, c.id)) if mine else None

        existing = self.call(f"GET {base}/{self.target.pr}/comments", find)
        if existing is not None:
            if not self.call(f"PATCH {base}/comments/{existing.id}", lambda: existing.edit(body)):
                raise InfraError(f"GitHub PATCH {base}/comments/{existing.id}: the edit was not applied")
            return str(existing.html_url)

        def create() -> Any:
            again = find()  # a retried create may follow one that succeeded behind a 502
            if again is not None:
                again.edit(body)
                return again
            return issue.create_comment(body)

        comment = self.call(f"POST {base}/{self.target.pr}/comments", create)
        return str(comment.html_url)

    def own_login(self) -> str:
        """The login gates' comments are written by (see ``GitHubTarget.login``)."""
        if self.target.login:
            return self.target.login
        import github3

        def me() -> Any:
            resp = self.gh.session.request("GET", f"{self.gh.session.base_url}/user")
            if resp.status_code in (403, 404):  # an installation token: "Resource not accessible by integration"
                return None
            if resp.status_code >= 400:
                raise github3.exceptions.error_for(resp)
            return resp.json()

        if self._login is None:
            user = self.call("GET /user", me)
            login = user.get("login") if isinstance(user, dict) else None
            self._login = str(login) if login else ACTIONS_BOT
        return self._login

    def set_status(self, context: str, verdict: str, description: str) -> None:
        sha = self.target.sha
        assert sha is not None
        self.call(
            f"POST /repos/{self.target.repository}/statuses/{sha}",
            lambda: self.repo.create_status(
                sha,
                STATUS_STATE[verdict],
                target_url=self.target.details_url,
                description=description[:140],
                context=context,
            ),
        )

    def set_check_run(self, name: str, verdict: str, title: str, summary: str) -> None:
        sha = self.target.sha
        assert sha is not None
        base = f"/repos/{self.target.repository}"
        # github3 lists check runs only from a full commit object; one GET on its session is enough
        listed = self.rest("GET", f"{base}/commits/{sha}/check-runs?check_name={quote(name)}")
        runs = [r for r in listed.get("check_runs", []) if r.get("name") == name]
        run_id = max(r["id"] for r in runs) if runs else None
        output = {"title": title[:255], "summary": summary}
        conclusion = CHECK_CONCLUSION[verdict]
        if run_id is None:
            self.call(
                f"POST {base}/check-runs",
                lambda: self.repo.create_check_run(
                    name=name,
                    head_sha=sha,
                    details_url=self.target.details_url,
                    status="completed",
                    conclusion=conclusion,
                    output=output,
                ),
            )
        else:
            self.rest(
                "PATCH",
                f"{base}/check-runs/{run_id}",
                {
                    "status": "completed",
                    "conclusion": conclusion,
                    "output": output,
                    **({"details_url": self.target.details_url} if self.target.details_url else {}),
                },
                headers={"Accept": "application/vnd.github.antiope-preview+json"},
            )


def _retry_after(exc: Any) -> float | None:
    response = getattr(exc, "response", None)
    value = response.headers.get("Retry-After") if response is not None else None
    try:
        seconds = float(value) if value is not None else None
    except ValueError:  # an HTTP date or garbage: fall back to our own backoff
        return None
    return seconds if seconds is None or seconds >= 0 else None  # NaN falls back; inf is above the cap


@dataclasses.dataclass
class GitHubClients:
    """One client per repository and pull request for everything one context does (replies,
    promotion comments, deployments), built on first use from the context's environment."""

    env: Mapping[str, str]
    _made: dict[tuple[str, int | None, str | None], GitHubClient | None] = dataclasses.field(default_factory=dict)

    def get(self, repository: str, pr: int | None, sha: str | None = None) -> GitHubClient | None:
        key = (repository, pr, sha)
        if key not in self._made:
            target = GitHubTarget.for_repository(self.env, repository, pr, sha)
            self._made[key] = GitHubClient(target) if target is not None else None
        return self._made[key]


def _author(comment: Any) -> str | None:
    user = getattr(comment, "user", None)
    login = getattr(user, "login", None)
    return str(login) if login else None
