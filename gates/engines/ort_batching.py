"""ONNX Runtime GenAI's own scheduler (``og.Engine``) behind gates' :class:`StepEngine`.

``og.Engine`` takes requests (``create_request``, ``begin_turn``), picks the sequences of each
step itself and reports every sequence's token in an event buffer (``run``). Its scheduler
depends on the model: a paged-attention build (CUDA) batches continuously up to
``engine.dynamic_batching.max_batch_size``; a CPU build has the static scheduler, which
runs batches of up to 4 sequences and admits the next batch when one has finished (its own
limit, measured and reported as ``batch_size_max``, not one of ours). Each request is sized to
what it can reach (``set_max_session_tokens``): by default the engine reserves the model's whole
context (8,192 tokens for SmolLM2) per sequence, and that allocation dominated every step.

Greedy only: the engine samples with its own random streams, which would not reproduce the shared
:class:`gates.engines.runner.Sampler` draws of the other engines; sampled requests take the
one-at-a-time path.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import numpy as np

from gates.engines.batching import Emitted, Job


def batching_overlay(max_batch: int) -> str:
    """The genai_config overlay that sizes the engine's scheduler (both kinds; the model has one)."""
    return json.dumps({"engine": {"static_batching": {"max_batch_size": max_batch}}} if max_batch > 0 else {})


class OrtStepEngine:
    """One ``og.Engine`` over an already loaded ``og.Model``; used only from the scheduler's thread."""

    def __init__(self, og: Any, model: Any, max_len: int, events: int = 256) -> None:
        self.og = og
        self.engine = og.Engine(model)
        self.max_len = max_len
        self.buffer = self.engine.create_event_buffer(events)
        self.turns: dict[int, int] = {}  # id(request) -> its turn id
        self.requests: dict[int, Any] = {}  # keeps each Request alive: one dropped is cancelled by the engine
        self.flag_token = int(og.EngineEventFlags.TOKEN)
        self.flag_done = int(og.EngineEventFlags.TURN_FINISHED)
        self.flag_failed = int(og.EngineEventFlags.FAILED)

    def configured_max_batch(self) -> int:
        return int(self.engine.get_capabilities().configured_max_batch_size)

    def admit(self, job: Job) -> Any:
        if len(job.ids) + job.max_new > self.max_len:
            raise ValueError(f"prompt+new tokens {len(job.ids) + job.max_new} exceed the context {self.max_len}")
        options = self.og.RequestOptions()
        options.set_max_session_tokens(len(job.ids) + job.max_new + 1)
        request = self.engine.create_request(options=options)
        turn = self.og.TurnOptions(request)
        turn.set_max_generated_tokens(job.max_new)
        turn.set_do_sample(False)
        self.turns[id(request)] = request.begin_turn(np.asarray(job.ids, dtype=np.int32), turn)
        self.requests[id(request)] = request
        return request

    def step(self) -> list[Emitted]:
        out = []
        for event in self.engine.run(self.buffer):
            request = self.requests.get(id(event.request), event.request)
            flags = int(event.flags)
            error = None
            if flags & self.flag_failed:
                error = f"onnxruntime-genai failed the request: {event.error_code.name}"
            token = int(event.token) if flags & self.flag_token and error is None else None
            finished = bool(flags & (self.flag_done | self.flag_failed))
            out.append(Emitted(request, token, finished, error))
            if finished:
                self._forget(request)
        return out

    def pending(self) -> bool:
        return bool(self.engine.has_pending_requests())

    def drop(self, handle: Any) -> None:
        turn = self.turns.get(id(handle))
        if turn is not None:
            handle.cancel_turn(turn)
        self._forget(handle)

    def _forget(self, request: Any) -> None:
        self.turns.pop(id(request), None)
        kept = self.requests.pop(id(request), None)
        if kept is not None:
            with contextlib.suppress(Exception):  # a request the engine already retired: nothing left to free
                kept.close()

    def close(self) -> None:
        for request in list(self.requests.values()):
            self._forget(request)
