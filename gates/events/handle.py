"""Handle one GitHub event: route it, then carry out its actions (gate runs, promotions, replies).

The pure decision is :func:`gates.events.routing.route`; this module supplies its inputs (the
files a PR changed, from git; which pipelines use which data files) and carries out what it
returns: gate runs here, promotions, rollbacks and re-checks through the promotion service
(``gates.promotion.service``). Every action's outcome is an exit code; the event's is the worst.
"""

from __future__ import annotations

import dataclasses
import subprocess
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from gates.config import load_pipeline
from gates.errors import ConfigError, ExitCode, GatesError, InfraError
from gates.events.plan import load_payload, pipeline_files, route_event
from gates.events.routing import Action, ActionKind, Routed
from gates.github.api import pull_head_sha
from gates.github.client import GitHubClients
from gates.journal import Journal
from gates.ledger import Ledger
from gates.promotion.commit_verdict import configured_architectures
from gates.promotion.gate import gate_commit
from gates.promotion.service import CheckerFactory, PromotionService, Request


@dataclasses.dataclass
class HandlerContext:
    repo_dir: Path
    ledger: Ledger
    env: Mapping[str, str]
    artifacts: Path
    progress: Callable[[str], None] = print
    checker_for: CheckerFactory | None = None  # default: the live re-check of the canary's target
    lock_wait_s: float = 600.0
    # replay <artifacts>/journal into the ledger before each action that reads runs (not a rollback)
    replay_journal: bool = False
    github: GitHubClients = dataclasses.field(init=False)  # one client per repository and PR
    architectures: tuple[str, ...] = dataclasses.field(init=False)  # $GATES_GPU_ARCHS, checked at start

    def __post_init__(self) -> None:
        self.github = GitHubClients(self.env)
        self.architectures = configured_architectures(self.env)
        self._journal_lock = threading.Lock()  # gates serve's workers: one replays at a time

    def replay_journal_before(self, kind: ActionKind) -> None:
        """Journaled runs are written first for what reads them; a rollback never waits on the journal."""
        if not self.replay_journal or kind in (ActionKind.ROLLBACK, ActionKind.COMMENT):
            return
        with self._journal_lock:
            Journal(self.artifacts).replay(self.ledger, self.progress)

    @property
    def promotion(self) -> PromotionService:
        return PromotionService(
            self.repo_dir,
            self.ledger,
            self.github,
            self.progress,
            self.checker_for,
            self.lock_wait_s,
            self.env.get("GATES_REPORT_URL"),
            self.architectures,
        )


@dataclasses.dataclass(frozen=True)
class ActionResult:
    action: Action
    exit_code: ExitCode
    message: str


@dataclasses.dataclass(frozen=True)
class HandleOutcome:
    routed: Routed
    results: tuple[ActionResult, ...]

    @property
    def exit_code(self) -> ExitCode:
        return max((r.exit_code for r in self.results), default=ExitCode.PASS)


def request_of(action: Action) -> Request:
    assert action.pipeline is not None
    return Request(action.pipeline, action.repository, action.actor, action.pr, action.sha, action.message)


# -- execution ---------------------------------------------------------------------------------
def handle_event(name: str, payload: Any, ctx: HandlerContext, dry_run: bool = False) -> HandleOutcome:
    routed = route_event(name, payload, ctx.repo_dir)
    if dry_run:
        return HandleOutcome(routed, ())
    # one action failing does not hide the others' outcomes
    return HandleOutcome(routed, tuple(execute_action(a, ctx) for a in routed.actions))


def execute_action(action: Action, ctx: HandlerContext) -> ActionResult:
    """One action, errors as exit codes."""
    try:
        return _execute(action, ctx)
    except GatesError as exc:
        return ActionResult(action, exc.exit_code, _failed(action, ctx, exc))


def _failed(action: Action, ctx: HandlerContext, exc: GatesError) -> str:
    req = Request(action.pipeline or "the pipelines", action.repository, action.actor, action.pr, action.sha, "")
    return ctx.promotion.failed(action.kind, req, exc)


def _execute(action: Action, ctx: HandlerContext) -> ActionResult:
    ctx.replay_journal_before(action.kind)
    service = ctx.promotion
    if action.kind == ActionKind.COMMENT:
        service.reply(Request("", action.repository, action.actor, action.pr, action.sha, ""), action.message)
        return ActionResult(action, ExitCode.PASS, "replied")
    pipelines = [action.pipeline] if action.pipeline else _pipelines_of_pr(ctx, action)
    if not pipelines:
        text = f"No pipeline has been gated on PR #{action.pr} yet: name one (`/gates {action.kind} <pipeline>`)."
        service.reply(Request("", action.repository, action.actor, action.pr, action.sha, ""), text)
        return ActionResult(action, ExitCode.BAD_INPUT, text)
    worst = ExitCode.PASS
    messages = []
    for path in pipelines:  # one pipeline failing does not stop the others
        one = dataclasses.replace(action, pipeline=path)
        if action.kind == ActionKind.RUN:
            try:
                code, message = _run(one, ctx)
            except GatesError as exc:
                code, message = exc.exit_code, _failed(one, ctx, exc)
        else:
            code, message = service.carry_out(action.kind, request_of(one))
            # a refusal is answered on the PR: an approving review by someone who may not promote is
            # routine, not a failed job (the command line exits NOT_AUTHORIZED)
            code = ExitCode.PASS if code == ExitCode.NOT_AUTHORIZED else code
        worst = max(worst, code)
        messages.append(message)
    return ActionResult(action, worst, "; ".join(messages))


def _pipelines_of_pr(ctx: HandlerContext, action: Action) -> list[str]:
    runs = ctx.ledger.runs(pr=action.pr) if action.pr else []
    configs = {r.config for r in runs if r.config}
    names = {r.pipeline for r in runs if not r.config}  # runs recorded before files were
    out = []
    for rel in pipeline_files(ctx.repo_dir):
        if rel in configs:
            out.append(rel)
            continue
        try:
            if load_pipeline(ctx.repo_dir / rel).config.name in names:
                out.append(rel)
        except ConfigError:
            continue
    return out


def _run(action: Action, ctx: HandlerContext) -> tuple[ExitCode, str]:
    assert action.pipeline is not None
    pf = load_pipeline(ctx.repo_dir / action.pipeline)
    sha = action.sha
    if action.pr and sha is None:  # a comment command: the PR's head now, and the checkout must be it
        client = ctx.github.get(action.repository, action.pr)
        if client is None:
            raise InfraError("rerunning a PR's gate needs a GitHub token (GATES_GITHUB_TOKEN or GITHUB_TOKEN)")
        sha = pull_head_sha(client, action.pr)
    here = _checkout_sha(ctx.repo_dir)
    if sha and here and here != sha:
        raise InfraError(f"the checkout is at {here[:12]} but the gate was asked for {sha[:12]}: check it out first")
    env = dict(ctx.env)
    env.update({"GITHUB_REPOSITORY": action.repository, "GATES_COMMIT_SHA": sha or ""})
    if action.pr:
        env["GATES_PR_NUMBER"] = str(action.pr)
    ctx.progress(f"gate run: {action.pipeline} ({action.message})")
    outcome = gate_commit(
        pf, ctx.artifacts, ctx.ledger, action.actor, action.pr, sha, env, ctx.progress, config=action.pipeline
    )
    return outcome.exit_code, f"{pf.config.name}: {outcome.verdict} — {outcome.reason}"


def _checkout_sha(repo_dir: Path) -> str | None:
    proc = subprocess.run(["git", "-C", str(repo_dir), "rev-parse", "HEAD"], capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else None


__all__ = ["HandleOutcome", "HandlerContext", "execute_action", "handle_event", "load_payload", "route_event"]
