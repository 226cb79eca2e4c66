"""The promotion state machine with a scripted checker: steps, failures, manual gate, crashes, locks."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import pytest

from gates.config.schema import PromotionSection
from gates.errors import ExitCode, InfraError
from gates.ledger import CanaryState, Ledger
from gates.promotion.machine import CheckResult, PromotionRefused, PromotionRun

DIGEST = "d" * 64


class Script:
    """Checks pass unless told otherwise for a weight; records every check and move."""

    def __init__(self, fail_at: dict[int, int] | None = None, hook: Callable[[int], None] | None = None):
        self.fail_at = dict(fail_at or {})  # weight -> how many times to fail there
        self.checks: list[int] = []
        self.moves: list[int] = []
        self.hook = hook

    def check(self, pipeline: str, weight: int) -> CheckResult:
        self.checks.append(weight)
        if self.hook:
            self.hook(weight)
        if self.fail_at.get(weight, 0) > 0:
            self.fail_at[weight] -= 1
            return CheckResult(False, f"planted failure at {weight}%", 3)
        return CheckResult(True, "ok", 3)


def _machine(ledger: Ledger, script: Script, **cfg: object) -> PromotionRun:
    def move(weight: int, action: str) -> None:
        script.moves.append(weight)
        state = ledger.canary("p")
        assert state is not None
        ledger.set_canary(
            CanaryState("p", state.target, None, "s", "c", weight, time.time(), state.digest), "t", action
        )

    section = PromotionSection(**{"retry_interval_s": 0, **cfg})  # type: ignore[arg-type]
    return PromotionRun(ledger, "p", section, script, move, "alice", lock_wait_s=2, progress=lambda _: None)


@pytest.fixture()
def ledger(ledger_url: str) -> Ledger:
    led = Ledger(ledger_url)
    led.set_canary(CanaryState("p", "local", None, "s", "c", 0, time.time(), DIGEST), "ops", "canary_deploy")
    return led


def _actions(ledger: Ledger) -> list[str]:
    moves = ("promote_step", "canary", "rollback")  # weight changes of the target; the rest are decisions
    return [
        h["action"] for h in ledger.history("p") if not h["action"].startswith(moves) or h["action"] == "rolled_back"
    ]


def test_walks_every_step_with_a_check_at_each(ledger: Ledger) -> None:
    script = Script()
    out = _machine(ledger, script).promote(DIGEST, pr=7, sha="a" * 40)
    assert out.state == "stable" and out.exit_code == 0
    assert script.moves == [10, 25, 50, 100] and script.checks == [10, 25, 50, 100]
    assert _actions(ledger) == ["promotion_started", "step_passed", "step_passed", "step_passed", "promoted"]
    assert ledger.canary("p").weight == 100  # type: ignore[union-attr]
    again = _machine(ledger, Script()).promote(DIGEST)
    assert again.state == "stable" and "already stable" in again.message


def test_failing_step_rolls_back_after_the_failure_limit(ledger: Ledger) -> None:
    script = Script(fail_at={25: 5})
    out = _machine(ledger, script, failure_limit=2).promote(DIGEST)
    assert out.state == "rolled_back" and out.exit_code == 1
    assert script.checks == [10, 25, 25] and script.moves == [10, 25, 25, 0]
    assert _actions(ledger)[-3:] == ["check_failed", "check_failed", "rolled_back"]
    assert ledger.canary("p").weight == 0  # type: ignore[union-attr]
    with pytest.raises(PromotionRefused, match="rolled back"):
        _machine(ledger, Script()).promote(DIGEST)


def test_one_transient_failure_is_retried(ledger: Ledger) -> None:
    script = Script(fail_at={50: 1})
    assert _machine(ledger, script, failure_limit=2).promote(DIGEST).state == "stable"
    assert script.checks == [10, 25, 50, 50, 100]


def test_manual_gate_pauses_and_still_rolls_back_while_waiting(ledger: Ledger) -> None:
    out = _machine(ledger, Script(), manual_gate_after=25).promote(DIGEST)
    assert out.state == "paused" and out.weight == 25
    assert _machine(ledger, Script()).recheck().state == "paused"  # a passing re-check keeps waiting
    out = _machine(ledger, Script(fail_at={25: 9}), manual_gate_after=25, failure_limit=1).recheck()
    assert out.state == "rolled_back" and ledger.canary("p").weight == 0  # type: ignore[union-attr]


def test_manual_gate_approval_goes_on(ledger: Ledger) -> None:
    assert _machine(ledger, Script(), manual_gate_after=50).promote(DIGEST).state == "paused"
    script = Script()
    assert _machine(ledger, script, manual_gate_after=50).promote(DIGEST).state == "stable"
    assert script.checks == [100]


def test_digest_that_did_not_pass_is_refused_and_nothing_moves(ledger: Ledger) -> None:
    script = Script()
    with pytest.raises(PromotionRefused, match="re-run the gate"):
        _machine(ledger, script).promote("e" * 64)
    assert script.moves == [] and ledger.promotion("p") is None
    assert _actions(ledger) == ["promote_refused"]


def test_crash_mid_step_then_rerun_converges(ledger: Ledger) -> None:
    class Crash(BaseException):
        pass

    def crash_at_50(weight: int) -> None:
        if weight == 50:
            raise Crash()

    with pytest.raises(Crash):
        _machine(ledger, Script(hook=crash_at_50)).promote(DIGEST)
    rec = ledger.promotion("p")
    assert rec is not None and rec.state == "canary" and rec.step == 1  # 25% passed; 50% never judged
    script = Script()
    assert _machine(ledger, script).promote(DIGEST).state == "stable"
    assert script.moves == [50, 100]  # the unjudged step is applied and checked again


def test_interrupted_rollback_is_finished(ledger: Ledger) -> None:
    script = Script()
    machine = _machine(ledger, script, failure_limit=1)

    def broken_move(weight: int, action: str) -> None:
        if weight == 0:
            raise InfraError("router unreachable")
        script.moves.append(weight)

    machine.move = broken_move
    machine.checker = Script(fail_at={10: 1})
    with pytest.raises(InfraError):
        machine.promote(DIGEST)
    assert ledger.promotion("p").state == "rolling_back"  # type: ignore[union-attr]
    out = _machine(ledger, Script()).promote(DIGEST)  # any later call finishes the rollback first
    assert out.state == "rolled_back" and ledger.canary("p").weight == 0  # type: ignore[union-attr]


def test_one_promotion_at_a_time_others_queue(ledger: Ledger, ledger_url: str) -> None:
    started, release = threading.Event(), threading.Event()

    def block(weight: int) -> None:
        if weight == 10:
            started.set()
            release.wait(10)

    first = threading.Thread(target=lambda: _machine(ledger, Script(hook=block)).promote(DIGEST))
    first.start()
    assert started.wait(10)
    other = Ledger(ledger_url)  # another connection to the same ledger, as another process has
    impatient = _machine(other, Script())
    impatient.lock_wait_s = 0.3
    with pytest.raises(InfraError, match="another promotion is in progress"):
        impatient.rollback("now")
    queued: list[str] = []
    waiter = threading.Thread(target=lambda: queued.append(_machine(other, Script()).rollback("after").state))
    waiter.start()
    time.sleep(0.3)
    assert not queued  # still waiting behind the first
    release.set()
    first.join(10)
    waiter.join(10)
    assert queued == ["rolled_back"]


def test_lock_of_a_dead_process_is_taken_over(ledger: Ledger) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with ledger._tx() as db:
        db.execute(
            "INSERT INTO locks VALUES (?,?,?,?,?,?)",
            ("promotion:p", "ghost", dead.pid, __import__("socket").gethostname(), time.time(), time.time() + 999),
        )
    assert _machine(ledger, Script()).promote(DIGEST).state == "stable"
    taken = [h for h in ledger.history("p") if h["action"] == "lock_taken_over"]
    assert taken and f"pid {dead.pid}" in taken[0]["detail"]


def test_a_running_promotion_keeps_its_lock_past_the_ttl_and_a_rollback_is_never_overridden(
    ledger: Ledger, ledger_url: str
) -> None:
    """Issue 27 item 4: a step longer than lock_ttl_s no longer lets a rollback take the lock and be
    overridden (the canary ending at 100%); the holder renews its lock while it is alive."""
    started, release = threading.Event(), threading.Event()

    def slow(weight: int) -> None:
        if weight == 10:
            started.set()
            release.wait(10)

    first = _machine(ledger, Script(hook=slow))
    first.lock_ttl_s = 0.3  # the holder's step takes far longer than its lock's time to live
    promoted: list[str] = []
    runner = threading.Thread(target=lambda: promoted.append(first.promote(DIGEST).state))
    runner.start()
    assert started.wait(10)
    time.sleep(0.6)  # two TTLs: without renewal the lock has expired
    other = _machine(Ledger(ledger_url), Script())
    other.lock_wait_s = 0.3
    with pytest.raises(InfraError, match="another promotion is in progress"):
        other.rollback("while the step is slow")
    rolled: list[str] = []
    waiter = threading.Thread(
        target=lambda: rolled.append(_machine(Ledger(ledger_url), Script()).rollback("later").state)
    )
    waiter.start()
    release.set()
    runner.join(10)
    waiter.join(10)
    assert promoted == ["stable"] and rolled == ["rolled_back"]
    assert ledger.canary("p").weight == 0 and ledger.promotion("p").state == "rolled_back"  # type: ignore[union-attr]


def test_every_transition_rereads_the_state_it_acts_on(ledger: Ledger, ledger_url: str) -> None:
    """Issue 27 item 4: a rollback recorded by anyone while a step is checked stops the walk at 0%."""
    other = Ledger(ledger_url)

    def rollback_behind_its_back(weight: int) -> None:
        if weight == 25:  # e.g. a holder on another host that took the lock over, or an operator
            rec = other.promotion("p")
            assert rec is not None
            other.set_promotion(dataclasses.replace(rec, state="rolled_back"), "bob", "rolled_back")
            state = other.canary("p")
            assert state is not None
            other.set_canary(dataclasses.replace(state, weight=0), "bob", "rollback")

    script = Script(hook=rollback_behind_its_back)
    out = _machine(ledger, script).promote(DIGEST)
    assert out.state == "rolled_back" and out.exit_code == ExitCode.FAIL
    assert script.moves[-1] == 0 and 50 not in script.moves and 100 not in script.moves
    assert ledger.canary("p").weight == 0 and ledger.promotion("p").state == "rolled_back"  # type: ignore[union-attr]


def test_a_lock_is_renewed_while_held(ledger: Ledger) -> None:
    seen: list[float] = []

    def look(weight: int) -> None:
        if weight in (10, 50):
            with ledger._tx() as db:
                seen.append(db.execute("SELECT expires_at FROM locks WHERE name='promotion:p'").fetchone()[0])
            time.sleep(0.4)

    machine = _machine(ledger, Script(hook=look))
    machine.lock_ttl_s = 0.3
    assert machine.promote(DIGEST).state == "stable"
    assert len(seen) == 2 and seen[1] > seen[0]


# -- issue 24: the served build is the candidate's identity ------------------------------------
def test_a_canary_registered_without_a_digest_is_never_promoted(ledger: Ledger) -> None:
    ledger.set_canary(CanaryState("p", "local", None, "s", "c", 0, time.time(), None), "ops", "canary_deploy")
    script = Script()
    with pytest.raises(PromotionRefused, match="registered without the digest of the build it serves"):
        _machine(ledger, script).promote(DIGEST)
    with pytest.raises(PromotionRefused, match="no build digest of a passing gate run"):
        _machine(ledger, script).promote(None)
    assert script.moves == [] and ledger.promotion("p") is None
    assert _actions(ledger) == ["promote_refused", "promote_refused"]


def test_a_canary_serving_another_build_is_refused_naming_both_digests(ledger: Ledger) -> None:
    with pytest.raises(PromotionRefused) as refused:
        _machine(ledger, Script()).promote("e" * 64)
    assert f"serves build {DIGEST}" in str(refused.value) and f"passed build {'e' * 64}" in str(refused.value)


def test_a_rolled_back_build_changed_and_passed_again_is_promoted(ledger: Ledger) -> None:
    assert _machine(ledger, Script(fail_at={25: 9}), failure_limit=1).promote(DIGEST).state == "rolled_back"
    with pytest.raises(PromotionRefused, match="rolled back"):  # the same bytes again: refused
        _machine(ledger, Script()).promote(DIGEST)
    changed = "f" * 64  # the candidate was changed, gated again, and its new build deployed
    ledger.set_canary(CanaryState("p", "local", None, "s", "c", 0, time.time(), changed), "ops", "canary_deploy")
    out = _machine(ledger, Script()).promote(changed)
    assert out.state == "stable"
    rec = ledger.promotion("p")
    assert rec is not None and rec.digest == changed and rec.state == "stable"
