"""Concurrent requests through an engine's own scheduler: the served model's batching path.

A served model that generated one request to the end before starting the next measured a queue,
not a model. Here the Triton model hands every streamed request to a :class:`BatchScheduler`,
which passes it to the engine's own scheduler (ONNX Runtime GenAI's ``Engine``, OpenVINO GenAI's
``ContinuousBatchingPipeline``, transformers' continuous batching): the engine decides which
sequences share a step, gates never batches by hand. Tokens come back per request as the engine
emits them.

Engines with a step API (add a request, run one step, read the step's tokens) plug a
:class:`StepEngine` into :class:`SchedulerThread`, which owns it on one thread (ONNX Runtime
GenAI requires every Engine call from its owner thread) and does the bookkeeping every engine
shares: stop tokens, cancellation, one request failing alone, a dead engine failing every request
with the reason, and the evidence that batching happened (how many sequences each step ran).
"""

from __future__ import annotations

import contextlib
import dataclasses
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, Protocol


@dataclasses.dataclass(eq=False)
class Job:
    """One streamed request: prompt ids in, tokens out through the callbacks (from the scheduler's thread)."""

    ids: list[int]
    max_new: int
    on_token: Callable[[int], None]
    on_done: Callable[[str | None], None]  # None: finished normally; else why it failed
    cancelled: Callable[[], bool] = lambda: False  # the client went away: stop generating for it
    submitted_s: float = dataclasses.field(default_factory=time.monotonic)


@dataclasses.dataclass(frozen=True)
class StepStats:
    """What the scheduler ran since it started (snapshots are subtracted to get a window)."""

    steps_by_size: dict[int, int]  # sequences in a step -> number of such steps
    busy_s: float  # time spent inside the engine's steps
    tokens: int  # tokens emitted

    @property
    def steps(self) -> int:
        return sum(self.steps_by_size.values())

    @property
    def batch_size_mean(self) -> float | None:
        n = self.steps
        return sum(k * v for k, v in self.steps_by_size.items()) / n if n else None

    @property
    def batch_size_max(self) -> int | None:
        sizes = [k for k, v in self.steps_by_size.items() if v > 0]
        return max(sizes) if sizes else None

    def minus(self, earlier: StepStats) -> StepStats:
        sizes = {k: v - earlier.steps_by_size.get(k, 0) for k, v in self.steps_by_size.items()}
        kept = {k: v for k, v in sizes.items() if v > 0}
        return StepStats(kept, self.busy_s - earlier.busy_s, self.tokens - earlier.tokens)


class BatchScheduler(Protocol):
    """An engine's scheduler serving many requests at once, owned by one thread."""

    max_batch: int  # sequences the engine runs in one step at most (what it was configured with)

    def submit(self, job: Job) -> None:
        """Queue a request; its callbacks are called from the scheduler's thread."""

    def stats(self) -> StepStats: ...

    def failure(self) -> str | None:
        """Why the scheduler died (every later request fails with it), or None while it runs."""

    def stalled(self, after_s: float) -> bool:
        """Whether one engine step has been running for more than ``after_s`` seconds."""

    def close(self) -> None: ...


@dataclasses.dataclass(frozen=True)
class Emitted:
    """One sequence's outcome of one engine step."""

    handle: Any  # what StepEngine.admit returned for the sequence
    token: int | None  # the token it produced this step (None: no token, e.g. it just failed)
    finished: bool  # the engine ended the sequence (stop token, length, cancelled, failed)
    error: str | None = None  # why the engine failed this sequence alone


class StepEngine(Protocol):
    """An engine's own scheduler behind a step API (created on, and only used from, one thread)."""

    def admit(self, job: Job) -> Any:
        """Hand a request to the engine's scheduler; returns the handle its steps report it by."""

    def step(self) -> list[Emitted]:
        """Run one step of the engine's scheduler (it picks the batch) and report what each sequence did."""

    def pending(self) -> bool:
        """Whether the engine has admitted sequences still to run."""

    def drop(self, handle: Any) -> None:
        """Stop a sequence early (stop token of ours, or the client went away) and free it."""

    def close(self) -> None: ...


class SchedulerThread:
    """A :class:`BatchScheduler` around a :class:`StepEngine` made and driven by one thread.

    ``make_engine`` runs on the thread (engines that check their owner thread need that). The
    loop admits what was submitted, runs one engine step while anything is pending, and hands
    each token to its request; it blocks when idle. An exception from a step kills the engine:
    every request in flight fails with it, and every later one at once (the served model is then
    unhealthy, never silently slow). ``on_step(sequences, seconds)`` reports each step (the
    served model's metrics)."""

    def __init__(
        self,
        make_engine: Callable[[], StepEngine],
        stop_ids: frozenset[int],
        max_batch: int,
        on_step: Callable[[int, float], None] | None = None,
        name: str = "gates-scheduler",
    ) -> None:
        self.max_batch = max_batch
        self._make = make_engine
        self._stop_ids = stop_ids
        self._on_step = on_step
        self._inbox: queue.Queue[Job | None] = queue.Queue()
        self._lock = threading.Lock()
        self._sizes: Counter[int] = Counter()
        self._busy_s = 0.0
        self._tokens = 0
        self._failure: str | None = None
        self._step_started: float | None = None  # monotonic time the running step began
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._failure:
            raise RuntimeError(self._failure)

    # the public side (any thread)
    def submit(self, job: Job) -> None:
        failure = self.failure()
        if failure:
            job.on_done(failure)
            return
        self._inbox.put(job)

    def stats(self) -> StepStats:
        with self._lock:
            return StepStats(dict(self._sizes), self._busy_s, self._tokens)

    def failure(self) -> str | None:
        with self._lock:
            return self._failure

    def stalled(self, after_s: float) -> bool:
        with self._lock:
            started = self._step_started
        return started is not None and time.monotonic() - started > after_s

    def close(self) -> None:
        self._inbox.put(None)
        self._thread.join(timeout=30)

    # the scheduler's thread
    def _main(self) -> None:
        try:
            engine = self._make()
        except Exception as exc:  # reported by the constructor: the model fails to load
            self._failure = f"the engine's scheduler could not start: {type(exc).__name__}: {exc}"
            self._ready.set()
            return
        self._ready.set()
        live: dict[int, tuple[Any, Job, int]] = {}  # id(handle) -> (handle, job, tokens so far)
        try:
            self._loop(engine, live)
        except Exception as exc:
            why = f"the engine's scheduler died: {type(exc).__name__}: {exc}"
            with self._lock:
                self._failure = why
            for _, job, _ in live.values():
                _safe(job.on_done, why)
            while True:  # fail what was queued too; later submits fail in submit()
                try:
                    job_or_none = self._inbox.get_nowait()
                except queue.Empty:
                    break
                if job_or_none is not None:
                    _safe(job_or_none.on_done, why)
        finally:
            # closing a dead engine may fail too; the failure is already recorded
            _safe(engine.close)

    def _loop(self, engine: StepEngine, live: dict[int, tuple[Any, Job, int]]) -> None:
        while True:
            block = not live and not engine.pending()
            while True:  # admit everything submitted so far (wait for one when idle)
                try:
                    job = self._inbox.get(block=block, timeout=None if block else 0)
                except queue.Empty:
                    break
                if job is None:
                    for _, j, _ in live.values():
                        _safe(j.on_done, "the served model is shutting down")
                    return
                block = False
                try:
                    handle = engine.admit(job)
                except Exception as exc:  # a request the engine refuses (too long, bad ids) fails alone
                    _safe(job.on_done, f"{type(exc).__name__}: {exc}")
                    continue
                live[id(handle)] = (handle, job, 0)
            for key, (handle, job, _) in list(live.items()):
                if job.cancelled():
                    engine.drop(handle)
                    del live[key]
                    _safe(job.on_done, "cancelled by the client")
            if not engine.pending():
                continue
            t0 = time.perf_counter()
            with self._lock:
                self._step_started = time.monotonic()
            emitted = engine.step()
            seconds = time.perf_counter() - t0
            produced = sum(1 for e in emitted if e.token is not None)
            with self._lock:
                self._step_started = None
                self._busy_s += seconds
                self._tokens += produced
                if produced:
                    self._sizes[produced] += 1
            if produced and self._on_step is not None:
                _safe(self._on_step, produced, seconds)
            for e in emitted:
                entry = live.get(id(e.handle))
                if entry is None:
                    continue  # a sequence dropped earlier: the engine reports its end
                handle, job, count = entry
                done = e.finished
                if e.token is not None and e.error is None:
                    count += 1
                    _safe(job.on_token, e.token)
                    done = done or e.token in self._stop_ids or count >= job.max_new
                    if done and not e.finished:
                        engine.drop(handle)  # our stop token (the engine knows only its eos) or our length
                if done or e.error is not None:
                    del live[id(handle)]
                    _safe(job.on_done, e.error)
                else:
                    live[id(handle)] = (handle, job, count)


def _safe(call: Callable[..., Any], *args: Any) -> None:
    """A request's callback failing (its client gone) must not kill the scheduler serving the others."""
    with contextlib.suppress(Exception):
        call(*args)
