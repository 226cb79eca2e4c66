"""transformers' own continuous batching behind gates' :class:`~gates.engines.batching.BatchScheduler`.

The PyTorch engines (``torch``, ``torch-int8``, ``torch-fp8``) serve concurrent requests through
Hugging Face transformers' ``ContinuousBatchingManager`` (``model.init_continuous_batching``):
its FIFO scheduler picks each step's sequences, its paged KV cache holds them, its paged
attention (``paged|sdpa``) reads them in one packed forward. gates adds no batcher of its own.

The manager runs its own generation thread (``start``), takes requests by token ids
(``add_request(..., streaming=True)``) and cancellations (``cancel_request``), and routes every
step's outputs through its ``OutputRouter``: ``deliver_batch`` once per step with every
streaming sequence that produced a token, ``deliver`` for a request it fails. Stepping the
manager from our thread would mean calling its private loop (``_generation_step``,
``prepare_next_batch``, async double-buffering on CUDA), so gates keeps the manager's thread and
plugs a router of its own (:class:`_StepRouter`) into it before it starts: each step's tokens go
straight to their requests, and the number of sequences in the step is counted there. A step's
time is measured from the end of the previous step's delivery (or from the arrival of work when
the manager was idle) to this one's: the manager runs step after step without waiting while it
has requests, so that interval is the engine's step (steps that produced no token, a prefill split
over several steps, are counted in the next one's time).

The manager switches the model it is given to paged attention (``config._attn_implementation =
"paged|sdpa"``), under which an ordinary forward of several tokens is no longer causal. The
runner's own paths (scoring, full log-probabilities, sampling) keep running concurrently on the
same weights, so the manager gets a *view* of the model (:func:`shadow_model`): its own modules
and config, the same parameter and buffer tensors.
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import itertools
import math
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable
from typing import Any

from gates.engines.batching import Job, StepStats

# sequences in one step when serve.max_batch is 0 (what this module recommends per device)
DEFAULT_MAX_BATCH = {"cpu": 16, "cuda": 64}
# KV-cache tokens reserved per sequence when the model's context is longer (more context still runs:
# the manager pre-empts and recomputes a sequence when the cache is full)
KV_TOKENS_PER_SEQUENCE = 2048
# tokens one step may carry (prefill chunks and decodes together): transformers sizes a step's static
# buffers and attention mask (tokens x cache pages) by it, and on CPU its own estimate from free
# memory (70k+ tokens) took over a minute to allocate before the first step
MAX_BATCH_TOKENS = {"cpu": 512, "cuda": 2048}
BLOCK_SIZE = 256
# transformers' FIFO scheduler admits no new prefill while fewer than this share of blocks is free (its
# default, set here explicitly): the cache is sized so that ``max_batch`` sequences fit above it
SAFETY_MARGIN = 0.15  # transformers' default block size (tokens per KV-cache block)
POLL_S = 0.05  # how often cancellations and the manager's thread are checked between steps
SHUTDOWN = "the served model is shutting down"
CANCELLED = "cancelled by the client"


_OPEN: weakref.WeakSet[TorchBatchScheduler] = weakref.WeakSet()


@atexit.register
def _close_open_schedulers() -> None:
    """Stop managers nobody closed before the interpreter tears down (their daemon threads would be
    killed inside torch, which aborts the process)."""
    for scheduler in list(_OPEN):
        scheduler.close()


def shadow_model(model: Any) -> Any:
    """A structural copy of ``model`` sharing every parameter and buffer tensor (no weight is copied).

    The copy has its own modules and config, so switching its attention to paged attention leaves
    ``model`` as it was."""
    import torch

    tensors = itertools.chain(model.parameters(), model.buffers())
    memo: dict[int, Any] = {id(t): t for t in tensors if isinstance(t, torch.Tensor)}
    return copy.deepcopy(model, memo)


def kv_cache_blocks(
    config: Any, bytes_per_value: int, max_len: int, max_batch: int, kv_cache_gb: float | None, block_size: int
) -> int:
    """Blocks of the paged KV cache: ``kv_cache_gb`` of them where given, else room for ``max_batch``
    sequences of ``min(context, KV_TOKENS_PER_SEQUENCE)`` tokens above the scheduler's safety margin;
    never fewer than one whole context."""
    layers = int(config.num_hidden_layers)
    heads = int(getattr(config, "num_key_value_heads", None) or config.num_attention_heads)
    head_dim = int(getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads)
    per_token = 2 * layers * heads * head_dim * bytes_per_value  # keys and values
    one_context = math.ceil(max_len / block_size)
    if kv_cache_gb is not None:
        blocks = int(kv_cache_gb * 2**30 // (per_token * block_size))
    else:
        per_sequence = math.ceil(min(max_len, KV_TOKENS_PER_SEQUENCE) / block_size)
        blocks = math.ceil(max_batch * per_sequence / (1 - SAFETY_MARGIN)) + 1
    return max(blocks, one_context)


class _StepRouter:
    """Replaces the manager's ``OutputRouter``: called on the manager's thread with each step's outputs."""

    def __init__(self, owner: TorchBatchScheduler) -> None:
        import queue

        self.owner = owner
        self.output_queue: queue.Queue[Any] = queue.Queue()  # the manager's get_result reads it; unused here
        self.result_handlers: dict[str, Any] = {}
        self._lock = threading.Lock()

    def deliver_batch(self, outputs: list[Any]) -> None:
        self.owner._on_outputs(outputs, step=True)

    def deliver(self, output: Any) -> None:
        self.owner._on_outputs([output], step=False)


class TorchBatchScheduler:
    """A :class:`~gates.engines.batching.BatchScheduler` around transformers' ``ContinuousBatchingManager``.

    Greedy only (the manager's sampler has its own random streams, not the shared
    :class:`~gates.engines.runner.Sampler`): sampled requests take the runner's one-at-a-time path."""

    def __init__(
        self,
        model: Any,
        stop_ids: frozenset[int],
        max_len: int,
        max_batch: int = 0,
        on_step: Callable[[int, float], None] | None = None,
        kv_cache_gb: float | None = None,
        pad_token_id: int | None = None,
    ) -> None:
        from transformers import GenerationConfig
        from transformers.generation.configuration_utils import ContinuousBatchingConfig

        device = str(getattr(model, "device", "cpu")).split(":")[0]
        self.max_batch = max_batch if max_batch > 0 else DEFAULT_MAX_BATCH.get(device, DEFAULT_MAX_BATCH["cpu"])
        self.max_len = max_len
        self.stop_ids = stop_ids
        self._on_step = on_step
        self.model = shadow_model(model)  # the manager's view: paged attention on the same weights
        eos = sorted(stop_ids) or -1  # -1: transformers' "no end-of-sequence token"
        generation = GenerationConfig(
            do_sample=False, max_new_tokens=max_len, eos_token_id=eos, pad_token_id=pad_token_id
        )
        bytes_per_value = int(self.model.dtype.itemsize)
        self.num_blocks = kv_cache_blocks(
            self.model.config, bytes_per_value, max_len, self.max_batch, kv_cache_gb, BLOCK_SIZE
        )
        batching = ContinuousBatchingConfig(
            block_size=BLOCK_SIZE,
            num_blocks=self.num_blocks,
            max_batch_tokens=max(self.max_batch, MAX_BATCH_TOKENS.get(device, MAX_BATCH_TOKENS["cpu"])),
            max_requests_per_batch=self.max_batch,
            safety_margin=SAFETY_MARGIN,
        )
        self._lock = threading.RLock()  # live requests, statistics, and every callback of a request
        self._live: dict[str, list[Any]] = {}  # request id -> [job, tokens so far]
        self._ids = itertools.count()
        self._sizes: Counter[int] = Counter()
        self._busy_s = 0.0
        self._tokens = 0
        self._mark = time.perf_counter()  # where the current step's time starts
        self._failure: str | None = None
        self._closing = threading.Event()
        self.manager = self.model.init_continuous_batching(
            generation_config=generation, continuous_batching_config=batching
        )
        self.manager.output_router = _StepRouter(self)  # before start: the batch processor takes it then
        if device == "cuda":
            self.manager.warmup()  # CUDA graphs (where the manager uses them) captured before the first request
        # the manager's generation thread inherits daemon-ness from the thread that starts it: started from a
        # daemon thread, a scheduler nobody closed cannot keep the process (Triton's stub) from exiting
        starter = threading.Thread(target=self.manager.start, name="torch-cb-start", daemon=True)
        starter.start()
        starter.join()
        _OPEN.add(self)
        self._monitor = threading.Thread(target=self._watch, name="torch-cb-monitor", daemon=True)
        self._monitor.start()

    # the public side (any thread)
    def submit(self, job: Job) -> None:
        failure = self.failure()
        if failure:
            job.on_done(failure)
            return
        if not job.ids or len(job.ids) + job.max_new > self.max_len:  # this request alone cannot run
            job.on_done(f"prompt {len(job.ids)} + new tokens {job.max_new} do not fit the context {self.max_len}")
            return
        request_id = f"gates-{next(self._ids)}"
        with self._lock:
            if not self._live:
                self._mark = time.perf_counter()  # the manager was idle: its next step starts now
            self._live[request_id] = [job, 0]
        try:
            added = self.manager.add_request(
                list(job.ids), request_id=request_id, max_new_tokens=job.max_new, streaming=True
            )
        except Exception as exc:  # the input queue refused it (full): this request fails, others go on
            added, why = None, f"{type(exc).__name__}: {exc}"
        else:
            why = "transformers' continuous batching manager is stopping"
        if added is None:
            with self._lock:
                if self._live.pop(request_id, None) is not None:
                    job.on_done(self.failure() or why)

    def stats(self) -> StepStats:
        with self._lock:
            return StepStats(dict(self._sizes), self._busy_s, self._tokens)

    def failure(self) -> str | None:
        with self._lock:
            return self._failure

    def stalled(self, after_s: float) -> bool:
        """Requests are waiting and the manager has delivered no step for more than ``after_s`` seconds."""
        with self._lock:
            return bool(self._live) and time.perf_counter() - self._mark > after_s

    def close(self) -> None:
        _OPEN.discard(self)
        self._closing.set()
        with self._lock:
            live, self._live = self._live, {}
            for job, _ in live.values():
                _safe(job.on_done, SHUTDOWN)
        with contextlib.suppress(Exception):  # a dead manager has nothing left to stop
            self.manager.stop(block=True, timeout=30, hard_stop=True)
        with contextlib.suppress(Exception):
            self.manager.destroy()
        self._monitor.join(timeout=5)

    # the manager's thread
    def _on_outputs(self, outputs: list[Any], step: bool) -> None:
        from transformers.generation.continuous_batching import RequestStatus

        now = time.perf_counter()
        with self._lock:
            fresh = []
            for out in outputs:
                entry = self._live.get(out.request_id)
                fresh.append((out, entry, list(out.generated_tokens)[entry[1] if entry is not None else 0 :]))
            produced = sum(1 for _, _, new in fresh if new)
            # the step is counted before its tokens reach the clients: a client that has its whole
            # answer then finds all of it in the step metrics (Triton's endpoint, scraped at once)
            if step and produced:
                seconds = now - self._mark
                self._sizes[produced] += 1
                self._busy_s += seconds
                self._tokens += produced
                if self._on_step is not None:
                    _safe(self._on_step, produced, seconds)
            for out, entry, new in fresh:
                if entry is None:
                    continue  # cancelled or closed earlier: the engine still reports its end
                job, count = entry
                finished = False
                for token in new:
                    count += 1
                    _safe(job.on_token, int(token))
                    if int(token) in self.stop_ids or count >= job.max_new:
                        finished = True
                        break
                entry[1] = count
                if out.status == RequestStatus.FAILED:
                    del self._live[out.request_id]
                    _safe(
                        job.on_done,
                        self._died() or f"transformers' continuous batching failed the request: {out.error}",
                    )
                elif finished or out.status == RequestStatus.FINISHED:
                    del self._live[out.request_id]
                    if out.status != RequestStatus.FINISHED:
                        self.manager.cancel_request(out.request_id)  # our stop, not the engine's: free it
                    _safe(job.on_done, None)
                elif job.cancelled():
                    del self._live[out.request_id]
                    self.manager.cancel_request(out.request_id)
                    _safe(job.on_done, CANCELLED)
            if step:
                self._mark = time.perf_counter()  # our callbacks are not the engine's time

    def _died(self) -> str | None:
        """The manager's fatal error as this scheduler's failure (it records it before failing every request)."""
        error = self.manager.fatal_error
        if error is not None and self._failure is None:
            self._failure = f"transformers' continuous batching manager died: {type(error).__name__}: {error}"
        return self._failure

    # the monitor's thread
    def _watch(self) -> None:
        """Cancels requests whose client went away (also while they wait for a place in a step), and fails
        every request when the manager's thread has died."""
        while not self._closing.wait(POLL_S):
            with self._lock:
                for request_id, (job, _) in list(self._live.items()):
                    if job.cancelled():
                        del self._live[request_id]
                        self.manager.cancel_request(request_id)
                        _safe(job.on_done, CANCELLED)
                if self.manager.is_running() or self._closing.is_set():
                    continue
                self._failure = self._died() or "transformers' continuous batching manager's thread exited"
                live, self._live = self._live, {}
                for job, _ in live.values():
                    _safe(job.on_done, self._failure)
            if self._failure is not None:
                return


def _safe(call: Callable[..., Any], *args: Any) -> None:
    """A request's callback failing (its client gone) must not kill the manager serving the others."""
    with contextlib.suppress(Exception):
        call(*args)
