"""SchedulerThread's bookkeeping over a step engine: stop tokens, lengths, cancellation, a request
failing alone, a dead engine failing everything with its reason, and the batch-size evidence.

The step engine here is a scripted one (each sequence emits prompt[0]+1, +2, … and the engine runs
at most ``width`` sequences per step, admitting in order), so every outcome is known exactly; the
real engines are exercised through the same class in test_ort_genai.py and tests/triton/."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from gates.engines.batching import Emitted, Job, SchedulerThread, StepStats


class Scripted:
    def __init__(self, width: int, fail_on: int | None = None, die_at_step: int | None = None) -> None:
        self.width = width
        self.fail_on = fail_on  # a sequence whose prompt starts with this fails on its first step
        self.die_at_step = die_at_step
        self.waiting: list[dict[str, Any]] = []
        self.running: list[dict[str, Any]] = []
        self.steps = 0
        self.dropped: list[int] = []

    def admit(self, job: Job) -> Any:
        if job.ids[0] < 0:
            raise ValueError("prompt too long")
        seq = {"next": job.ids[0] + 1, "left": job.max_new + 5, "first": job.ids[0]}  # the engine's own cap is looser
        self.waiting.append(seq)
        return seq

    def step(self) -> list[Emitted]:
        time.sleep(0.001)  # a step takes time, as a real one does (a cancelled request is seen between steps)
        self.steps += 1
        if self.die_at_step is not None and self.steps >= self.die_at_step:
            raise RuntimeError("kernel crashed")
        while self.waiting and len(self.running) < self.width:
            self.running.append(self.waiting.pop(0))
        out = []
        for seq in list(self.running):
            if seq["first"] == self.fail_on:
                self.running.remove(seq)
                out.append(Emitted(seq, None, True, "request unserviceable"))
                continue
            token = seq["next"]
            seq["next"] += 1
            seq["left"] -= 1
            finished = seq["left"] == 0
            if finished:
                self.running.remove(seq)
            out.append(Emitted(seq, token, finished))
        return out

    def pending(self) -> bool:
        return bool(self.waiting or self.running)

    def drop(self, handle: Any) -> None:
        self.dropped.append(handle["first"])
        for group in (self.waiting, self.running):
            if handle in group:
                group.remove(handle)

    def close(self) -> None:
        pass


class Collector:
    def __init__(self) -> None:
        self.tokens: dict[int, list[int]] = {}
        self.errors: dict[int, str | None] = {}
        self.done = threading.Semaphore(0)

    def job(self, first: int, max_new: int, cancelled: Any = None) -> Job:
        self.tokens[first] = []

        def finished(error: str | None) -> None:
            self.errors[first] = error
            self.done.release()

        return Job([first, 0], max_new, self.tokens[first].append, finished, cancelled or (lambda: False))

    def wait(self, n: int) -> None:
        for _ in range(n):
            assert self.done.acquire(timeout=10), "a request never finished"


def test_concurrent_requests_share_steps_and_each_gets_its_own_tokens() -> None:
    engine = Scripted(width=4)
    steps: list[int] = []
    scheduler = SchedulerThread(lambda: engine, frozenset(), 4, lambda n, s: steps.append(n))
    got = Collector()
    jobs = [got.job(100 * i, 3) for i in range(1, 9)]
    for job in jobs:
        scheduler.submit(job)
    got.wait(8)
    scheduler.close()
    assert got.tokens == {100 * i: [100 * i + 1, 100 * i + 2, 100 * i + 3] for i in range(1, 9)}
    assert all(e is None for e in got.errors.values())
    stats = scheduler.stats()
    assert stats.tokens == 24 and stats.batch_size_max == 4 and steps == [k for k in steps if k <= 4]
    assert sum(k * v for k, v in stats.steps_by_size.items()) == 24
    # our length limit stops a sequence the engine would have run on: it is dropped from the engine
    assert sorted(engine.dropped) == [100 * i for i in range(1, 9)]


def test_a_stop_token_ends_the_request_and_frees_its_slot() -> None:
    engine = Scripted(width=2)
    scheduler = SchedulerThread(lambda: engine, frozenset({12}), 2)
    got = Collector()
    scheduler.submit(got.job(10, 8))  # 11, 12 (stop) then done
    scheduler.submit(got.job(20, 2))
    got.wait(2)
    scheduler.close()
    assert got.tokens[10] == [11, 12] and got.tokens[20] == [21, 22]
    assert got.errors == {10: None, 20: None}


def test_a_failed_or_cancelled_request_fails_alone() -> None:
    engine = Scripted(width=4, fail_on=30)
    scheduler = SchedulerThread(lambda: engine, frozenset(), 4)
    got = Collector()
    flag = threading.Event()
    scheduler.submit(got.job(10, 10**6, cancelled=flag.is_set))  # runs until cancelled
    scheduler.submit(got.job(20, 3))
    scheduler.submit(got.job(30, 3))
    scheduler.submit(got.job(-1, 3))  # refused at admission
    got.wait(3)  # 30 failed, -1 was refused, 20 finished; 10 is still running
    flag.set()
    got.wait(1)
    scheduler.close()
    assert got.errors[-1] == "ValueError: prompt too long" and scheduler.failure() is None
    assert got.errors[30] == "request unserviceable" and got.tokens[30] == []
    assert got.errors[20] is None and got.tokens[20] == [21, 22, 23]
    assert got.errors[10] == "cancelled by the client" and 10 in engine.dropped


def test_an_engine_that_dies_fails_every_request_with_its_reason_and_refuses_new_ones() -> None:
    engine = Scripted(width=2, die_at_step=3)
    scheduler = SchedulerThread(lambda: engine, frozenset(), 2)
    got = Collector()
    for first in (10, 20, 30):
        scheduler.submit(got.job(first, 10))
    got.wait(3)
    assert all(e is not None and "kernel crashed" in e for e in got.errors.values())
    assert "died" in (scheduler.failure() or "")
    scheduler.submit(got.job(40, 1))  # answered at once, not queued forever
    got.wait(1)
    assert "kernel crashed" in (got.errors[40] or "")
    scheduler.close()


def test_an_engine_that_cannot_start_is_an_error_at_construction() -> None:
    def broken() -> Scripted:
        raise OSError("no such model")

    with pytest.raises(RuntimeError, match="could not start: OSError: no such model"):
        SchedulerThread(broken, frozenset(), 4)


def test_a_window_of_stats_is_the_difference_of_two_snapshots() -> None:
    before = StepStats({1: 5, 4: 2}, 1.0, 13)
    after = StepStats({1: 5, 4: 7, 2: 1}, 3.5, 35)
    window = after.minus(before)
    assert window == StepStats({4: 5, 2: 1}, 2.5, 22)
    assert window.batch_size_max == 4 and window.batch_size_mean == pytest.approx(22 / 6)
    assert StepStats({}, 0.0, 0).batch_size_mean is None
