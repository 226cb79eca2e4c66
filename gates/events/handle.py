"""Handle one GitHub event: route it, then carry out its actions (gate runs, promotions, replies).

The pure decision is :func:`gates.events.router.route`; this module supplies its inputs (the
files a PR changed, from git; which pipelines use which data files) and executes what it
returns. Every action's outcome is an exit code; the event's is the worst of them.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from gates.config import load_pipeline
from gates.config.load import PipelineFile
from gates.errors import BadInputError, ConfigError, ExitCode, GatesError, InfraError
from gates.events.authz import authorize, read_codeowners
from gates.events.comments import PROMOTION_MARKER, promotion_comment, quiet
from gates.events.plan import load_payload, pipeline_files, route_event
from gates.events.router import Action, Routed
from gates.github.publish import GitHubClient, GitHubTarget
from gates.ledger import CanaryState, Ledger, PromotionRecord
from gates.promotion.machine import Checker, NoCheck, Outcome, PromotionRun
from gates.promotion.recheck import router_checker

CheckerFactory = Callable[[PipelineFile, CanaryState], Checker]


@dataclasses.dataclass
class HandlerContext:
    repo_dir: Path
    ledger: Ledger
    env: Mapping[str, str]
    artifacts: Path
    progress: Callable[[str], None] = print
    checker_for: CheckerFactory | None = None  # default: live re-check through the local router
    lock_wait_s: float = 600.0

    def github(self, repository: str, pr: int | None, sha: str | None = None) -> GitHubClient | None:
        target = GitHubTarget.for_repository(self.env, repository, pr, sha)
        return GitHubClient(target) if target is not None else None


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


# -- execution ---------------------------------------------------------------------------------
def handle_event(name: str, payload: Any, ctx: HandlerContext, dry_run: bool = False) -> HandleOutcome:
    routed = route_event(name, payload, ctx.repo_dir)
    if dry_run:
        return HandleOutcome(routed, ())
    # one action failing does not hide the others' outcomes
    return HandleOutcome(routed, tuple(execute_action(a, ctx) for a in routed.actions))


def execute_action(action: Action, ctx: HandlerContext) -> ActionResult:
    """One action (also what ``gates promote``/``rollback``/``recheck`` run), errors as exit codes."""
    try:
        return _execute(action, ctx)
    except GatesError as exc:
        return ActionResult(action, exc.exit_code, _failed(action, ctx, exc))


def _failed(action: Action, ctx: HandlerContext, exc: GatesError) -> str:
    """Say what failed where the user asked (the PR), without letting a failed reply hide the error."""
    ctx.progress(f"{action.kind} {action.pipeline or ''}: error: {exc}")
    try:
        _reply(ctx, action, f"gates could not {action.kind} `{action.pipeline or 'the pipelines'}`: {quiet(str(exc))}")
    except GatesError as reply_exc:
        ctx.progress(f"(the reply on the PR failed too: {reply_exc})")
    return str(exc)


def _execute(action: Action, ctx: HandlerContext) -> ActionResult:
    if action.kind == "comment":
        _reply(ctx, action, action.message)
        return ActionResult(action, ExitCode.PASS, "replied")
    pipelines = [action.pipeline] if action.pipeline else _pipelines_of_pr(ctx, action)
    if not pipelines:
        text = f"No pipeline has been gated on PR #{action.pr} yet: name one (`/gates {action.kind} <pipeline>`)."
        _reply(ctx, action, text)
        return ActionResult(action, ExitCode.BAD_INPUT, text)
    worst = ExitCode.PASS
    messages = []
    for path in pipelines:  # one pipeline failing does not stop the others
        one = dataclasses.replace(action, pipeline=path)
        try:
            code, message = _RUNNERS[action.kind](one, ctx)
        except GatesError as exc:
            code, message = exc.exit_code, _failed(one, ctx, exc)
        worst = max(worst, code)
        messages.append(message)
    return ActionResult(action, worst, "; ".join(messages))


def _pipelines_of_pr(ctx: HandlerContext, action: Action) -> list[str]:
    names = {r.pipeline for r in ctx.ledger.runs(pr=action.pr)} if action.pr else set()
    out = []
    for rel in pipeline_files(ctx.repo_dir):
        try:
            if load_pipeline(ctx.repo_dir / rel).config.name in names:
                out.append(rel)
        except ConfigError:
            continue
    return out


def _run(action: Action, ctx: HandlerContext) -> tuple[ExitCode, str]:
    from gates.pipeline import run_and_record

    assert action.pipeline is not None
    pf = load_pipeline(ctx.repo_dir / action.pipeline)
    sha = action.sha
    if action.pr and sha is None:  # a comment command: the PR's head now, and the checkout must be it
        client = ctx.github(action.repository, action.pr)
        if client is None:
            raise InfraError("rerunning a PR's gate needs a GitHub token (GATES_GITHUB_TOKEN or GITHUB_TOKEN)")
        from gates.github.api import pull_head_sha

        sha = pull_head_sha(client, action.pr)
    here = _checkout_sha(ctx.repo_dir)
    if sha and here and here != sha:
        raise InfraError(f"the checkout is at {here[:12]} but the gate was asked for {sha[:12]}: check it out first")
    env = dict(ctx.env)
    env.update({"GITHUB_REPOSITORY": action.repository, "GATES_COMMIT_SHA": sha or ""})
    if action.pr:
        env["GATES_PR_NUMBER"] = str(action.pr)
    ctx.progress(f"gate run: {action.pipeline} ({action.message})")
    outcome = run_and_record(pf, ctx.artifacts, ctx.ledger, action.actor, action.pr, sha, env, ctx.progress)
    return outcome.exit_code, f"{pf.config.name}: {outcome.verdict} — {outcome.reason}"


def _checkout_sha(repo_dir: Path) -> str | None:
    proc = subprocess.run(["git", "-C", str(repo_dir), "rev-parse", "HEAD"], capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else None


def _authorized(action: Action, ctx: HandlerContext, pf: PipelineFile, what: str) -> str | None:
    """None when allowed; else the reason (replied on the PR and recorded)."""
    client = ctx.github(action.repository, action.pr)

    def team_member(org: str, team: str, login: str) -> bool:
        if client is None:
            return False  # without GitHub, team membership cannot be shown: fail closed
        from gates.github.api import is_team_member

        return is_team_member(client, org, team, login)

    assert action.pipeline is not None
    decision = authorize(
        action.actor, action.pipeline, pf.config.promotion, team_member, read_codeowners(ctx.repo_dir), what
    )
    if decision.allowed:
        return None
    ctx.ledger.record(pf.config.name, action.actor, f"{what}_denied", None, None, detail=decision.reason)
    return decision.reason


def _recorded_canary(ctx: HandlerContext, name: str) -> CanaryState:
    canary = ctx.ledger.canary(name)
    if canary is None:
        raise BadInputError(f"pipeline {name!r} has no canary deployment recorded; deploy one first")
    return canary


def _promotion(action: Action, ctx: HandlerContext, what: str) -> tuple[PipelineFile, CanaryState, str | None]:
    """(pipeline, its canary, why the actor may not) for a promote or rollback. No canary is bad
    input, before anything else; a refusal is replied on the PR and recorded here."""
    assert action.pipeline is not None
    pf = load_pipeline(ctx.repo_dir / action.pipeline)
    name = pf.config.name
    canary = _recorded_canary(ctx, name)
    denied = _authorized(action, ctx, pf, what)
    if denied:
        verb = "roll back" if what == "rollback" else what
        _reply(ctx, action, f"@{action.actor} may not {verb} `{name}`: {quiet(denied)}. Nothing was changed.")
    return pf, canary, denied


def _machine(action: Action, ctx: HandlerContext, pf: PipelineFile, canary: CanaryState | None) -> PromotionRun:
    """The state machine; the live checker (router, golden prompts) is built only when given the
    canary to check: a rollback must work whatever the target can be checked with."""
    from gates.promotion import canary as ops

    name = pf.config.name
    checker = (ctx.checker_for or router_checker)(pf, canary) if canary is not None else NoCheck()

    def move(weight: int, label: str) -> None:
        ops.set_weight(ctx.ledger, name, weight, action.actor, label)

    return PromotionRun(
        ctx.ledger, name, pf.config.promotion, checker, move, action.actor, ctx.lock_wait_s, progress=ctx.progress
    )


def _promote(action: Action, ctx: HandlerContext) -> tuple[ExitCode, str]:
    pf, canary, denied = _promotion(action, ctx, "promote")
    name = pf.config.name
    if denied:
        return ExitCode.PASS, f"{name}: not authorized ({denied})"  # handled: a refusal, not a failure
    digest, sha, report = _passed_digest(action, ctx, name)
    run = _machine(action, ctx, pf, canary)
    run.observer = _deployment_observer(ctx, action, name, sha, digest)
    outcome = run.promote(digest, action.pr, sha, report)
    _report_outcome(ctx, action, name, outcome)
    return outcome.exit_code, outcome.message


def _rollback(action: Action, ctx: HandlerContext) -> tuple[ExitCode, str]:
    pf, _, denied = _promotion(action, ctx, "rollback")
    name = pf.config.name
    if denied:
        return ExitCode.PASS, f"{name}: not authorized ({denied})"
    run = _machine(action, ctx, pf, None)
    rec = ctx.ledger.promotion(name)
    if rec is not None and rec.sha:
        run.observer = _deployment_observer(ctx, action, name, rec.sha, rec.digest)
    outcome = run.rollback(f"requested by {action.actor} ({action.message})")
    _report_outcome(ctx, action, name, outcome)
    return ExitCode.PASS, outcome.message


def _deployment_observer(
    ctx: HandlerContext, action: Action, name: str, sha: str | None, digest: str | None
) -> Callable[[PromotionRecord, str, dict[str, Any]], None] | None:
    """The promotion as a GitHub deployment to environment gates/<pipeline> (when there is a token)."""
    client = ctx.github(action.repository, action.pr) if sha else None
    if client is None or sha is None:
        return None
    from gates.github.api import DeploymentReporter

    reporter = DeploymentReporter(client, name, sha, digest, ctx.env.get("GATES_REPORT_URL"))

    def observe(rec: PromotionRecord, what: str, record: dict[str, Any]) -> None:
        weight = record.get("weight")
        at = f" at {weight}%" if weight is not None else ""
        detail = record.get("detail")
        text = detail if isinstance(detail, str) else (json.dumps(detail) if detail else "")
        reporter(what, f"{what.replace('_', ' ')}{at}: {text}".rstrip(": "))

    return observe


def _recheck(action: Action, ctx: HandlerContext) -> tuple[ExitCode, str]:
    """Scheduled or manual: check the canary where it stands; a failure rolls it back (no approval needed)."""
    assert action.pipeline is not None
    pf = load_pipeline(ctx.repo_dir / action.pipeline)
    outcome = _machine(action, ctx, pf, _recorded_canary(ctx, pf.config.name)).recheck()
    if outcome.state == "rolled_back":
        _report_outcome(ctx, action, pf.config.name, outcome)
    return outcome.exit_code, outcome.message


def _passed_digest(action: Action, ctx: HandlerContext, name: str) -> tuple[str, str | None, str | None]:
    """(digest, commit, report) of the gate that passed on what is being promoted; refuse anything else."""
    from gates.promotion.machine import PromotionRefused

    sha = action.sha
    if action.pr:
        client = ctx.github(action.repository, action.pr)
        if client is None:
            raise InfraError("promoting from a PR needs a GitHub token (GATES_GITHUB_TOKEN or GITHUB_TOKEN)")
        from gates.github.api import pull_head_sha

        sha = pull_head_sha(client, action.pr)
    runs = [r for r in ctx.ledger.runs(pipeline=name, pr=action.pr) if sha is None or r.sha == sha]
    if not runs:
        why = f"no gate run of {name} on {sha[:12] if sha else 'record'}: the PR moved on; re-run the gate first"
        ctx.ledger.record(name, action.actor, "promote_refused", None, None, detail=why)
        raise PromotionRefused(f"{name}: promotion refused: {why}")
    last = runs[-1]
    if last.verdict != "PASS" or not last.digest:
        why = f"the last gate run of {name} on {(last.sha or '')[:12]} is {last.verdict}, not PASS"
        ctx.ledger.record(name, action.actor, "promote_refused", None, None, digest=last.digest, detail=why)
        raise PromotionRefused(f"{name}: promotion refused: {why}")
    return last.digest, sha, last.report


def _report_outcome(ctx: HandlerContext, action: Action, name: str, outcome: Outcome) -> None:
    body = promotion_comment(name, outcome, ctx.ledger.history(name))
    client = ctx.github(action.repository, action.pr) if action.pr else None
    if client is None:
        ctx.progress(outcome.message)
        return
    client.upsert_comment(PROMOTION_MARKER.format(name=name), body)


def _reply(ctx: HandlerContext, action: Action, text: str) -> None:
    if not action.pr:
        ctx.progress(text)
        return
    client = ctx.github(action.repository, action.pr)
    if client is None:
        ctx.progress(f"(no GitHub token: not posted) {text}")
        return
    from gates.github.api import post_comment

    post_comment(client, action.pr, text)


_RUNNERS: dict[str, Callable[[Action, HandlerContext], tuple[ExitCode, str]]] = {
    "run": _run,
    "promote": _promote,
    "rollback": _rollback,
    "recheck": _recheck,
}

__all__ = ["HandleOutcome", "HandlerContext", "execute_action", "handle_event", "load_payload", "route_event"]
