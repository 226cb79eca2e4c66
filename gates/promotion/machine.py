"""The promotion state machine: candidate -> canary steps (re-checked) -> stable, or rolled back.

Per pipeline, one row in the ledger's ``promotions`` table says where the promotion is:

    canary@i        step i (its weight) passed its re-check; the next call moves to step i+1
    paused@i        step i passed and is the manual gate: the next *approved* call goes on
    rolling_back@i  a rollback was decided and the target may not be at 0 yet
    stable@i        the last step (100%) passed
    rolled_back@i   the canary is at 0%

Every decision is written *before* the action it decides (``rolling_back`` before the weight
goes to 0) and every outcome *after* it was observed (``canary@i`` only once step i's re-check
passed), each with its transition in the same transaction. So a process killed at any point
leaves a state from which running the same command again converges: a step whose outcome was
not recorded is simply applied and checked again (setting a weight is idempotent), and an
unfinished rollback is finished. One promotion per pipeline runs at a time (a lock in the
ledger; a dead holder's lock is taken over); others wait behind it.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from gates.config.promotion import PromotionSection
from gates.errors import BadInputError, ExitCode, GatesError, InfraError
from gates.ledger import Ledger, PromotionConflict, PromotionRecord
from gates.ledger.states import PromotionState as State


class PromotionRefused(GatesError):
    """The promotion may not go ahead (wrong digest, rolled back, not deployed); nothing changed."""

    exit_code = ExitCode.FAIL


@dataclasses.dataclass(frozen=True)
class CheckResult:
    passed: bool
    detail: str
    canary_requests: int = 0
    # NODATA (too few requests, a metric missing, not settled yet): the step holds at its weight
    # and is checked again; never a PASS, never a failure (gates/promotion/analysis/judge.py)
    hold: bool = False
    figures: dict[str, Any] | None = None  # one analysis window's figures, kept in the ledger


class Checker(Protocol):
    def check(self, pipeline: str, weight: int) -> CheckResult: ...


class NoCheck:
    """The checker of a call that only rolls back: asked to check, it is a bug."""

    def check(self, pipeline: str, weight: int) -> CheckResult:
        raise AssertionError("a rollback does not re-check")


@dataclasses.dataclass(frozen=True)
class Outcome:
    state: str
    weight: int
    message: str
    held: bool = False  # stopped at a step without a decision: not promoted, not rolled back
    # nothing was in progress, so nothing was done: a scheduled re-check after a rollback is not a
    # failure every time it runs (it exited 1 forever)
    idle: bool = False

    @property
    def exit_code(self) -> ExitCode:
        if self.held:
            return ExitCode.INFRA  # inconclusive: run it again (it resumes from the ledger)
        if self.idle:
            return ExitCode.PASS
        return ExitCode.FAIL if self.state in (State.ROLLED_BACK, State.ROLLING_BACK) else ExitCode.PASS


MoveFn = Callable[[int, str], None]  # (weight, action) -> the canary target is at that weight


@dataclasses.dataclass
class PromotionRun:
    ledger: Ledger
    pipeline: str
    cfg: PromotionSection
    checker: Checker
    move: MoveFn
    actor: str
    lock_wait_s: float = 600.0
    lock_ttl_s: float = 120.0  # renewed every third of it while held: only a dead holder's lock expires
    sleep: Callable[[float], None] = time.sleep
    progress: Callable[[str], None] = print
    # told of every recorded transition (e.g. GitHub deployment statuses); never decides anything
    observer: Callable[[PromotionRecord, str, dict[str, Any]], None] | None = None
    # turns the target's mirror on/off (promotion.mirror); None: the target cannot be asked to
    mirror: Callable[[bool], None] | None = None
    # the promotion record this run's decisions are based on: every transition checks it is still so
    _seen: PromotionRecord | None = dataclasses.field(default=None, init=False, repr=False)
    _lock_lost: str | None = dataclasses.field(default=None, init=False, repr=False)

    def _read(self) -> PromotionRecord | None:
        self._seen = self.ledger.promotion(self.pipeline)
        return self._seen

    def _record(self, rec: PromotionRecord, actor: str, action: str, **record: Any) -> None:
        # written only if the ledger still holds what this run last read or wrote (else PromotionConflict)
        self.ledger.set_promotion(rec, actor, action, expect=self._seen, **record)
        self._seen = rec
        if self.observer is not None:
            try:
                self.observer(rec, action, record)
            except GatesError as exc:  # informational: the ledger is the record, the step goes on
                self.progress(f"{self.pipeline}: could not report {action}: {exc}")

    # -- entry points ------------------------------------------------------------------------
    def promote(
        self, digest: str | None, pr: int | None = None, sha: str | None = None, report: str | None = None
    ) -> Outcome:
        """Walk the canary forward from where it is; on a paused promotion this is the approval."""
        with self._locked():
            canary = self.ledger.canary(self.pipeline)
            if canary is None:
                raise BadInputError(f"pipeline {self.pipeline!r} has no canary deployment recorded; deploy one first")
            # the build digest of what the canary serves must be the one whose gate passed: without
            # either there is nothing to compare, and nothing is promoted on trust
            if not digest:
                self._refuse("no build digest of a passing gate run to promote: re-run the gate first", digest)
            if not canary.digest:
                self._refuse(
                    "the canary was registered without the digest of the build it serves: register it again "
                    "with --digest (report.json candidate.build_digest)",
                    digest,
                )
            if canary.digest != digest:
                self._refuse(
                    f"the deployed canary serves build {canary.digest} but the gate passed build {digest}: "
                    "re-run the gate on what is deployed (or deploy what passed) first",
                    digest,
                )
            rec = self._read()
            if rec is not None and rec.state == State.ROLLING_BACK:
                return self._finish_rollback(rec, "finishing an interrupted rollback")
            if rec is not None and rec.digest == digest and rec.state == State.STABLE:
                return Outcome(State.STABLE, 100, f"{self.pipeline}: already stable at {(digest or '')[:12]}")
            if rec is not None and rec.digest == digest and rec.state == State.ROLLED_BACK:
                # the same bytes again; a changed candidate has another build digest and starts anew
                self._refuse("this build was rolled back; push a change and pass the gate again", digest)
            try:
                if rec is None or rec.digest != digest or rec.state in (State.STABLE, State.ROLLED_BACK):
                    rec = PromotionRecord(self.pipeline, digest, pr, sha, State.CANARY, -1, 0, self.actor, time.time())
                    self._record(
                        rec, self.actor, "promotion_started", report=report, detail={"steps": self.cfg.steps, "pr": pr}
                    )
                return self._walk(rec, approved=rec.state == State.PAUSED)
            except PromotionConflict as exc:
                return self._interrupted(exc)

    def recheck(self) -> Outcome:
        """Check the canary where it stands (e.g. waiting at the manual gate); roll back on failure."""
        with self._locked():
            rec = self._read()
            if rec is None or rec.state not in (
                State.CANARY,
                State.PAUSED,
                State.ROLLING_BACK,
            ):
                state = rec.state if rec else "none"
                return Outcome(state, 0, f"{self.pipeline}: no promotion in progress ({state})", idle=True)
            if rec.state == State.ROLLING_BACK:
                return self._finish_rollback(rec, "finishing an interrupted rollback")
            weight = self.cfg.steps[rec.step] if rec.step >= 0 else 0
            holds = 0
            try:
                while True:
                    result = self.checker.check(self.pipeline, weight)
                    if result.hold:
                        holds += 1
                        self._held(weight, result, holds)
                        if holds >= self._max_holds():
                            return self._stop_held(rec, weight, result)
                        continue
                    if result.passed:
                        self._window(weight, result, "PASS")
                        rec = dataclasses.replace(rec, failures=0)
                        self._record(rec, self.actor, "recheck_passed", weight=weight, detail=result.detail)
                        return Outcome(rec.state, weight, f"{self.pipeline}: re-check at {weight}% passed")
                    rec = self._failed(rec, weight, result)
                    if rec.state == State.ROLLING_BACK:
                        return self._finish_rollback(rec, f"{rec.failures} failed re-checks: {result.detail}")
                    self.sleep(self.cfg.retry_interval_s)
            except PromotionConflict as exc:
                return self._interrupted(exc)

    def rollback(self, reason: str) -> Outcome:
        """Send no traffic to the canary, whatever state it is in (manual gate included)."""
        with self._locked():
            rec = self._read()
            if rec is None:
                canary = self.ledger.canary(self.pipeline)
                if canary is None:
                    raise BadInputError(f"pipeline {self.pipeline!r} has no canary deployment recorded")
                rec = PromotionRecord(self.pipeline, canary.digest, None, None, State.CANARY, -1, 0, self.actor, 0)
            if rec.state != State.ROLLING_BACK:
                rec = dataclasses.replace(rec, state=State.ROLLING_BACK)
                self._record(rec, self.actor, "rollback_requested", detail=reason)
            return self._finish_rollback(rec, reason)

    # -- steps ---------------------------------------------------------------------------------
    def _walk(self, rec: PromotionRecord, approved: bool) -> Outcome:
        steps = self.cfg.steps
        i = rec.step + 1
        holds = 0
        if i == 0 and self.cfg.mirror:
            rec, outcome = self._mirror(rec)
            if outcome is not None:
                return outcome
        while i < len(steps):
            weight = steps[i]
            self._still_current()  # never move the canary on a state someone else has changed
            if not holds:
                self.progress(f"{self.pipeline}: step {i + 1}/{len(steps)}: canary to {weight}%")
                self.move(weight, f"promote_step_{i + 1}")
            result = self.checker.check(self.pipeline, weight)
            if result.hold:  # no decision: the weight stays, the next window is analysed
                holds += 1
                self._held(weight, result, holds)
                if holds >= self._max_holds():
                    return self._stop_held(rec, weight, result)
                continue
            holds = 0
            if not result.passed:
                rec = self._failed(rec, weight, result)
                if rec.state == State.ROLLING_BACK:
                    return self._finish_rollback(rec, f"step {i + 1} at {weight}%: {result.detail}")
                self.sleep(self.cfg.retry_interval_s)
                continue  # the same step again: its weight is set again (idempotent) and re-checked
            self._window(weight, result, "PASS")
            last = i == len(steps) - 1
            gate = self.cfg.manual_gate_after == weight and not approved
            state = State.STABLE if last else (State.PAUSED if gate else State.CANARY)
            rec = dataclasses.replace(rec, state=state, step=i, failures=0)
            action = "promoted" if last else ("paused_for_approval" if gate else "step_passed")
            self._record(rec, self.actor, action, weight=weight, verdict="PASS", detail=result.detail)
            self.progress(f"{self.pipeline}: {weight}% re-check passed ({result.detail})")
            if last:
                return Outcome(State.STABLE, weight, f"{self.pipeline}: promoted to stable (100%)")
            if gate:
                return Outcome(State.PAUSED, weight, f"{self.pipeline}: paused at {weight}% for approval")
            i += 1
        return Outcome(rec.state, steps[-1], f"{self.pipeline}: {rec.state}")

    def _mirror(self, rec: PromotionRecord) -> tuple[PromotionRecord, Outcome | None]:
        """Before any user is served by the canary: judge copies of stable's traffic. PASS goes on
        to the first weight, FAIL counts toward ``failure_limit`` (rolled back there), no decision
        in ``max_windows`` stops with the mirror off. An interrupted promotion mirrors again."""
        if self.mirror is None:
            raise BadInputError(f"pipeline {self.pipeline!r}: promotion.mirror is set but this canary cannot mirror")
        self._still_current()
        self.progress(f"{self.pipeline}: mirror: copies of stable's requests to the canary, no user served by it")
        self.mirror(True)
        self._record(rec, self.actor, "mirror_started", weight=0)
        holds = 0
        while True:
            result = self.checker.check(self.pipeline, 0)
            if result.hold:
                holds += 1
                self._held(0, result, holds)
                if holds >= self._max_holds():
                    self.mirror(False)
                    return rec, self._stop_held(rec, 0, result)
                continue
            if not result.passed:
                rec = self._failed(rec, 0, result)
                if rec.state == State.ROLLING_BACK:
                    return rec, self._finish_rollback(rec, f"mirror: {result.detail}")
                self.sleep(self.cfg.retry_interval_s)
                continue
            self._window(0, result, "PASS")
            rec = dataclasses.replace(rec, failures=0)
            self._record(rec, self.actor, "mirror_passed", weight=0, verdict="PASS", detail=result.detail)
            self.progress(f"{self.pipeline}: mirror passed ({result.detail})")
            return rec, None  # the first weight's move ends the mirror

    def _max_holds(self) -> int:
        return self.cfg.analysis.max_windows if self.cfg.analysis is not None else 1

    def _held(self, weight: int, result: CheckResult, holds: int) -> None:
        """A window without a decision: recorded (with its figures), no state change."""
        self._window(weight, result, "NODATA")
        self.progress(f"{self.pipeline}: {weight}% held (window {holds}/{self._max_holds()}): {result.detail}")

    def _window(self, weight: int, result: CheckResult, verdict: str) -> None:
        if result.figures is not None:
            self._still_current()
            self.ledger.record(
                self.pipeline, self.actor, "analysis_window", None, None, weight=weight, verdict=verdict,
                detail=result.figures,
            )  # fmt: skip

    def _stop_held(self, rec: PromotionRecord, weight: int, result: CheckResult) -> Outcome:
        """No decision in the step's windows: stop where it is (fail closed: nothing promoted)."""
        why = f"no decision at {weight}% after {self._max_holds()} windows: {result.detail}"
        self.ledger.record(self.pipeline, self.actor, "analysis_held", None, None, weight=weight, detail=why)
        return Outcome(rec.state, weight, f"{self.pipeline}: held, not promoted: {why}", held=True)

    def _failed(self, rec: PromotionRecord, weight: int, result: CheckResult) -> PromotionRecord:
        self._window(weight, result, "FAIL")
        failures = rec.failures + 1
        give_up = failures >= self.cfg.failure_limit
        rec = dataclasses.replace(rec, failures=failures, state=State.ROLLING_BACK if give_up else rec.state)
        self._record(
            rec,
            self.actor,
            "check_failed",
            weight=weight,
            verdict="FAIL",
            detail=f"{result.detail} ({failures}/{self.cfg.failure_limit})",
        )
        self.progress(
            f"{self.pipeline}: re-check at {weight}% failed ({failures}/{self.cfg.failure_limit}): {result.detail}"
        )
        return rec

    def _finish_rollback(self, rec: PromotionRecord, reason: str) -> Outcome:
        self.move(0, "rollback")
        rec = dataclasses.replace(rec, state=State.ROLLED_BACK)
        self._record(rec, self.actor, "rolled_back", weight=0, verdict="FAIL", detail=reason)
        self.progress(f"{self.pipeline}: rolled back to 0%: {reason}")
        return Outcome(State.ROLLED_BACK, 0, f"{self.pipeline}: rolled back: {reason}")

    def _still_current(self) -> None:
        """The lock is still ours and the recorded promotion is what this run decided on."""
        if self._lock_lost is not None:
            raise PromotionConflict(f"{self.pipeline}: {self._lock_lost}")
        now = self.ledger.promotion(self.pipeline)
        if _key(now) != _key(self._seen):
            state = f"{now.state}@{now.step}" if now else "none"
            raise PromotionConflict(f"{self.pipeline}: the promotion changed under this one (it is now {state})")

    def _interrupted(self, exc: PromotionConflict) -> Outcome:
        """Stop where someone else changed the promotion. A rollback recorded meanwhile wins: the
        canary is sent to 0% again (this run may have moved it after that rollback did)."""
        now = self._read()
        self.progress(f"{exc}: stopped")
        if now is not None and now.state == State.ROLLING_BACK:
            return self._finish_rollback(now, f"a rollback was recorded during this promotion ({exc})")
        if now is not None and now.state == State.ROLLED_BACK:
            self.move(0, "rollback")
            self.ledger.record(self.pipeline, self.actor, "rollback_reapplied", None, None, weight=0, detail=str(exc))
            return Outcome(State.ROLLED_BACK, 0, f"{self.pipeline}: rolled back during this promotion; stopped at 0%")
        raise InfraError(f"{exc}; stopped without moving the canary: run the command again") from exc

    def _refuse(self, why: str, digest: str | None) -> None:
        self.ledger.record(self.pipeline, self.actor, "promote_refused", None, None, digest=digest, detail=why)
        raise PromotionRefused(f"{self.pipeline}: promotion refused: {why}")

    @contextmanager
    def _locked(self) -> Iterator[None]:
        # unique per call: two threads of one process (gates serve) must not share a lock
        name, owner = f"promotion:{self.pipeline}", f"{self.actor}#{uuid.uuid4().hex[:8]}"
        deadline = time.monotonic() + self.lock_wait_s
        while True:
            taken, note = self.ledger.try_lock(name, owner, self.lock_ttl_s)
            if taken:
                break
            if time.monotonic() > deadline:
                raise InfraError(f"{self.pipeline}: another promotion is in progress ({note}); try again later")
            time.sleep(0.2)  # queued behind the running promotion of this pipeline
        if note:
            self.ledger.record(self.pipeline, self.actor, "lock_taken_over", None, None, detail=note)
            self.progress(f"{self.pipeline}: {note}")
        self._lock_lost = None
        stop = threading.Event()
        heartbeat = threading.Thread(target=self._heartbeat, args=(name, owner, stop), daemon=True)
        heartbeat.start()
        try:
            yield
        finally:
            stop.set()
            heartbeat.join()
            self.ledger.unlock(name, owner)

    def _heartbeat(self, name: str, owner: str, stop: threading.Event) -> None:
        """Renew the lock every third of its TTL while it is held: a live holder's lock never expires."""
        while not stop.wait(self.lock_ttl_s / 3):
            try:
                if not self.ledger.renew_lock(name, owner, self.lock_ttl_s):
                    self._lock_lost = "this promotion's lock was taken over"
                    return
            except GatesError as exc:  # the ledger is briefly unreachable: try again at the next beat
                self.progress(f"{self.pipeline}: could not renew the promotion lock: {exc}")


def _key(rec: PromotionRecord | None) -> tuple[str, int, str | None] | None:
    """What a transition is decided on: the state, the step and the candidate."""
    return None if rec is None else (rec.state, rec.step, rec.digest)
