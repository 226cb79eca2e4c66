"""The promotion service: what ``/gates promote`` on a PR and ``gates promote`` both call.

It authorizes the actor (``promotion.approvers``, CODEOWNERS), checks that the digest being
promoted is the one whose gate passed on the commit the PR proposes, drives the state machine
(``machine.PromotionRun``) with the canary target's live checker, replies on the PR, reports the
promotion as a GitHub deployment. The gate run on a commit and its record are in ``gate.py``.
Events (``gates.events``) only route and deliver; this is where promotion lives.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gates.config import load_pipeline
from gates.config.analysis import TrafficMode
from gates.config.names import require_unique_name
from gates.config.parse import PipelineFile
from gates.errors import BadInputError, ExitCode, GatesError, InfraError
from gates.github.api import DeploymentReporter, is_team_member, post_comment, pull_head_sha
from gates.github.client import GitHubClients
from gates.ledger import CanaryState, Ledger, PromotionRecord
from gates.ledger.states import PromotionState
from gates.promotion import canary as ops
from gates.promotion.authz import authorize, read_codeowners
from gates.promotion.comments import PROMOTION_MARKER, promotion_comment, quiet
from gates.promotion.commit_verdict import commit_verdict
from gates.promotion.machine import Checker, NoCheck, Outcome, PromotionRefused, PromotionRun

CheckerFactory = Callable[[PipelineFile, CanaryState], Checker]
VERBS = {"rollback": "roll back", "canary_set": "set the canary weight of"}  # what -> words in a refusal


@dataclasses.dataclass(frozen=True)
class Request:
    """Who asks for what: a promotion, rollback or re-check of one pipeline (path in the repo)."""

    pipeline: str
    repository: str  # owner/name, where replies go
    actor: str
    pr: int | None
    sha: str | None
    why: str  # the command or event that asked


@dataclasses.dataclass
class PromotionService:
    repo_dir: Path
    ledger: Ledger
    github: GitHubClients
    progress: Callable[[str], None] = print
    checker_for: CheckerFactory | None = None  # default: the live re-check of the canary's target
    lock_wait_s: float = 600.0
    report_url: str | None = None  # linked from the GitHub deployment
    # GPU architectures each commit must have PASSed on ($GATES_GPU_ARCHS; none: every one that ran)
    architectures: tuple[str, ...] = ()
    # canary analysis' traffic for this call (gates promote --traffic synthetic); None: the config's
    traffic: TrafficMode | None = None

    def carry_out(self, kind: str, req: Request, weight: int = 0) -> tuple[ExitCode, str]:
        """``promote`` | ``rollback`` | ``recheck`` | ``canary_set`` (to ``weight``); errors become
        exit codes, said on the PR."""
        actions: dict[str, Callable[[Request], tuple[ExitCode, str]]] = {
            "promote": self.promote,
            "rollback": self.rollback,
            "recheck": self.recheck,
            "canary_set": lambda r: self.set_canary(r, weight),
        }
        try:
            return actions[kind](req)
        except GatesError as exc:
            return exc.exit_code, self.failed(kind, req, exc)

    def failed(self, kind: str, req: Request, exc: GatesError) -> str:
        """Say what failed where the user asked (the PR), without letting a failed reply hide the
        error. The message is returned, not printed: the caller prints it, once."""
        try:
            self.reply(req, f"gates could not {kind} `{req.pipeline}`: {quiet(str(exc))}")
        except GatesError as reply_exc:
            self.progress(f"(the reply on the PR failed too: {reply_exc})")
        return str(exc)

    # -- the three operations -------------------------------------------------------------------
    def promote(self, req: Request) -> tuple[ExitCode, str]:
        pf, canary, denied = self._prepare(req, "promote")
        name = pf.config.name
        if denied:
            return ExitCode.NOT_AUTHORIZED, f"{name}: not authorized ({denied})"
        require_unique_name(pf)  # (a rollback is never refused for it)
        digest, sha, report = self._passed_digest(req, name)
        run = self._machine(req, pf, canary)
        run.observer = self._deployment_observer(req, name, sha, digest)
        outcome = run.promote(digest, req.pr, sha, report)
        self._report_outcome(req, name, outcome)
        return outcome.exit_code, outcome.message

    def rollback(self, req: Request) -> tuple[ExitCode, str]:
        pf, _, denied = self._prepare(req, "rollback")
        name = pf.config.name
        if denied:
            return ExitCode.NOT_AUTHORIZED, f"{name}: not authorized ({denied})"
        run = self._machine(req, pf, None)
        rec = self.ledger.promotion(name)
        if rec is not None and rec.sha:
            run.observer = self._deployment_observer(req, name, rec.sha, rec.digest)
        outcome = run.rollback(f"requested by {req.actor} ({req.why})")
        self._report_outcome(req, name, outcome)
        return ExitCode.PASS, outcome.message

    def recheck(self, req: Request) -> tuple[ExitCode, str]:
        """Scheduled or manual: check the canary where it stands; a failure rolls it back (no approval needed)."""
        pf = load_pipeline(self.repo_dir / req.pipeline)
        canary = self.ledger.canary(pf.config.name)
        if canary is None:  # a schedule re-checks every pipeline: one never deployed is not an error
            return ExitCode.PASS, f"{pf.config.name}: no canary deployment recorded: nothing to re-check"
        rec = self.ledger.promotion(pf.config.name)
        if rec is None or rec.state in (PromotionState.STABLE, PromotionState.ROLLED_BACK):
            # nothing to check, so no checker either (one may need what a rolled-back target lacks);
            # the state machine says the same under its lock when the state moves meanwhile
            state = rec.state.value if rec else "none"
            return ExitCode.PASS, f"{pf.config.name}: no promotion in progress ({state})"
        outcome = self._machine(req, pf, canary).recheck()
        if outcome.state == PromotionState.ROLLED_BACK:
            self._report_outcome(req, pf.config.name, outcome)
        return outcome.exit_code, outcome.message

    def set_canary(self, req: Request, weight: int) -> tuple[ExitCode, str]:
        """Move the canary by hand (``gates canary set``): authorized as a promotion is, and recorded
        (a refusal as ``canary_set_denied``, the move as ``canary_set``)."""
        pf, _, denied = self._prepare(req, "canary_set")
        name = pf.config.name
        if denied:
            return ExitCode.NOT_AUTHORIZED, f"{name}: not authorized ({denied})"
        state = ops.set_weight(self.ledger, name, weight, req.actor, "canary_set")
        return ExitCode.PASS, f"{name}: canary at {state.weight}% on {state.target}"

    def reply(self, req: Request, text: str) -> None:
        """Answer on the PR. Without one there is nobody to answer: the caller prints the message it
        is returned (printing here too showed every error twice, once escaped for Markdown)."""
        client = self.github.get(req.repository, req.pr) if req.pr else None
        if not req.pr:
            return
        if client is None:
            self.progress(f"(no GitHub token: not posted) {text}")
        else:
            post_comment(client, req.pr, text)

    # -- the steps ------------------------------------------------------------------------------
    def _recorded_canary(self, name: str) -> CanaryState:
        canary = self.ledger.canary(name)
        if canary is None:
            raise BadInputError(f"pipeline {name!r} has no canary deployment recorded; deploy one first")
        return canary

    def _prepare(self, req: Request, what: str) -> tuple[PipelineFile, CanaryState, str | None]:
        """(pipeline, its canary, why the actor may not). No canary is bad input, before anything
        else; a refusal is replied on the PR and recorded here."""
        pf = load_pipeline(self.repo_dir / req.pipeline)
        name = pf.config.name
        canary = self._recorded_canary(name)
        denied = self._authorized(req, pf, what)
        if denied:
            verb = VERBS.get(what, what)
            self.reply(req, f"@{req.actor} may not {verb} `{name}`: {quiet(denied)}. Nothing was changed.")
        return pf, canary, denied

    def _authorized(self, req: Request, pf: PipelineFile, what: str) -> str | None:
        """None when allowed; else the reason (recorded)."""
        client = self.github.get(req.repository, req.pr)

        def team_member(org: str, team: str, login: str) -> bool:
            # without GitHub, team membership cannot be shown: fail closed
            return client is not None and is_team_member(client, org, team, login)

        codeowners = read_codeowners(self.repo_dir)
        verb = VERBS.get(what, what)
        decision = authorize(req.actor, req.pipeline, pf.config.promotion, team_member, codeowners, verb)
        if decision.allowed:
            return None
        self.ledger.record(pf.config.name, req.actor, f"{what}_denied", None, None, detail=decision.reason)
        return decision.reason

    def _machine(self, req: Request, pf: PipelineFile, canary: CanaryState | None) -> PromotionRun:
        """The state machine; the live checker is built only when given the canary to check: a
        rollback must work whatever the target can be checked with."""
        name = pf.config.name
        if canary is None:
            checker: Checker = NoCheck()
        elif self.checker_for is not None:
            checker = self.checker_for(pf, canary)
        else:
            checker = ops.live_checker(pf, canary, self.traffic)

        def move(weight: int, label: str) -> None:
            ops.set_weight(self.ledger, name, weight, req.actor, label)

        def mirror(on: bool) -> None:
            ops.set_mirror(self.ledger, name, on, req.actor)

        return PromotionRun(
            self.ledger,
            name,
            pf.config.promotion,
            checker,
            move,
            req.actor,
            self.lock_wait_s,
            progress=self.progress,
            mirror=mirror,
        )

    def _passed_digest(self, req: Request, name: str) -> tuple[str, str | None, str | None]:
        """(digest, commit, report) of the gate that passed on what is being promoted; refuse anything else."""
        sha = req.sha
        if req.pr:
            client = self.github.get(req.repository, req.pr)
            if client is None:
                raise InfraError("promoting from a PR needs a GitHub token (GATES_GITHUB_TOKEN or GITHUB_TOKEN)")
            head = pull_head_sha(client, req.pr)
            if req.sha is not None and req.sha != head:
                # an approval is of the commit it reviewed (review.commit_id): never of a later head
                why = (
                    f"the approval was given at {req.sha[:12]} but PR #{req.pr} is now at {head[:12]}: "
                    "approve the new head once its gate passes"
                )
                self.ledger.record(name, req.actor, "promote_refused", None, None, detail=why)
                raise PromotionRefused(f"{name}: promotion refused: {why}")
            sha = head
        runs = [
            r
            for r in self.ledger.runs(pipeline=name, pr=req.pr)
            if (sha is None or r.sha == sha) and r.config == req.pipeline  # this file's runs: not another's name
        ]
        if not runs:
            why = (
                f"no gate run of {req.pipeline} ({name}) on {sha[:12] if sha else 'record'}: "
                "the PR moved on, or the gate has not run on this file; re-run the gate first"
            )
            self.ledger.record(name, req.actor, "promote_refused", None, None, detail=why)
            raise PromotionRefused(f"{name}: promotion refused: {why}")
        if sha is None:  # no commit named (a local promote): all runs of the latest run's commit
            latest = max(runs, key=lambda r: (r.at, r.id))
            sha = latest.sha  # runs outside git have none: then all runs of the latest run's candidate
            runs = [r for r in runs if r.sha == sha and (sha is not None or r.digest == latest.digest)]
        verdict = commit_verdict(runs, self.architectures)
        if not verdict.passed or verdict.digest is None:
            why = f"the gate of {name} on {(sha or '')[:12] or 'record'} is not PASS: {verdict.why}"
            digest = max(runs, key=lambda r: (r.at, r.id)).digest
            self.ledger.record(name, req.actor, "promote_refused", None, None, digest=digest, detail=why)
            raise PromotionRefused(f"{name}: promotion refused: {why}")
        return verdict.digest, sha, verdict.report

    def _deployment_observer(
        self, req: Request, name: str, sha: str | None, digest: str | None
    ) -> Callable[[PromotionRecord, str, dict[str, Any]], None] | None:
        """The promotion as a GitHub deployment to environment gates/<pipeline> (when there is a token)."""
        client = self.github.get(req.repository, req.pr) if sha else None
        if client is None or sha is None:
            return None
        reporter = DeploymentReporter(client, name, sha, digest, self.report_url)

        def observe(rec: PromotionRecord, what: str, record: dict[str, Any]) -> None:
            weight = record.get("weight")
            at = f" at {weight}%" if weight is not None else ""
            detail = record.get("detail")
            text = detail if isinstance(detail, str) else (json.dumps(detail) if detail else "")
            reporter(what, f"{what.replace('_', ' ')}{at}: {text}".rstrip(": "))

        return observe

    def _report_outcome(self, req: Request, name: str, outcome: Outcome) -> None:
        client = self.github.get(req.repository, req.pr) if req.pr else None
        if client is None:
            self.progress(outcome.message)
            return
        client.upsert_comment(
            PROMOTION_MARKER.format(name=name), promotion_comment(name, outcome, self.ledger.history(name))
        )
