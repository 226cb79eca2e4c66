"""Triton Python-backend model serving a causal LM from a gates artifact (copied as model.py).

Runs inside Triton's Python stub, not in the gates process. The engine that built the artifact
runs it (``gates.engines.load_runner``: PyTorch, ONNX Runtime GenAI, …); this file only maps
tensors to the runner's calls, so every engine answers the same protocol. Inputs and outputs:

- ``PROMPT`` (BYTES [1]), ``MAX_NEW_TOKENS`` (INT32 [1]), optional ``TOP_K`` (INT32 [1]).
- optional ``FORCED_IDS`` (INT64 [-1]): score these continuation tokens instead of generating
  (teacher forcing), so two models can be compared position by position on the same context.
- optional ``LOGPROB_IDS`` (INT64 [-1, -1]): per position, token ids whose log-probabilities to
  return in ``SELECTED_LOGPROBS``.
- optional ``STREAM`` (BOOL [1]): send one response per generated token (``TEXT`` piece and
  ``TOKEN_IDS`` of that token) instead of one response with everything.
- optional ``TEMPERATURE`` (FP32 [1]) and ``SEED`` (INT64 [1]): above 0, sample from
  softmax(logits / temperature) with a generator seeded by ``SEED`` (0 when absent) instead of
  decoding greedily; absent or 0 is greedy, exactly as without them.
- optional ``PROMPT_IDS`` (INT64 [-1]): the prompt as token ids (``PROMPT`` is then not encoded).
- optional ``PREFILL`` (BOOL [1]) with ``FORCED_IDS``: score the forced tokens in one pass (the
  engine's prefill kernels, ``Runner.score_prefill``) instead of token by token; top-k is then
  taken with a partial sort (ties may order differently from the full sort).
- ``TEXT`` (BYTES [1]), ``TOKEN_IDS`` (INT64 [-1]), ``TOP_IDS`` / ``TOP_LOGPROBS`` ([-1, -1]),
  ``SELECTED_LOGPROBS`` (FP32 [-1, -1]), ``PROMPT_TOKENS`` (INT32 [1]).

The model is *decoupled* (Triton's streaming transaction policy): every request is answered
through its response sender and closed with a final flag, so clients see tokens as they come.
``execute`` never generates: greedy streamed requests go to the engine's own scheduler
(``Runner.batching``: concurrent requests share its steps), everything else (scoring, full
log-probabilities, sampling, and every request when ``batching`` is ``off`` or the engine has no
scheduler) to one worker thread that serves them one at a time, as a one-at-a-time server would.
Each scheduler step is counted in Triton's metrics endpoint (``gates_engine_steps_total`` by
sequences in the step, ``gates_engine_busy_seconds_total``, ``gates_engine_tokens_total``,
``gates_engine_max_batch``): the load stage reads from them that batching happened and how much
of the machine each arm used.
"""

from __future__ import annotations

import contextlib
import json
import queue
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils  # provided by the stub


def _param(config: dict[str, Any], key: str, default: str = "") -> str:
    return str(config.get("parameters", {}).get(key, {}).get("string_value", default))


def _optional(request: Any, name: str) -> Any:
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    return None if tensor is None else tensor.as_numpy()


class TritonPythonModel:
    def initialize(self, args: dict[str, Any]) -> None:
        # The embedded interpreter starts in the "C" locale (ASCII default encoding) whatever the
        # environment says; torch reads UTF-8 files with the default encoding on import.
        import locale

        for name in ("C.UTF-8", "en_US.UTF-8"):
            try:
                locale.setlocale(locale.LC_CTYPE, name)
                break
            except locale.Error:
                continue
        config = json.loads(args["model_config"])
        extra_path = _param(config, "python_path")
        if extra_path and extra_path not in sys.path:
            sys.path.insert(0, extra_path)
        # gates is importable only now that python_path is on sys.path (the stub ignores PYTHONPATH)
        from gates.engines import load_runner

        threads = int(_param(config, "threads", "1") or 1)
        self.runner = load_runner(Path(_param(config, "artifact_path")), threads)
        # a served delay per generated token (render_config's delay_ms): fault injection only
        self.delay_s = float(_param(config, "served_delay_ms", "0") or 0) / 1000.0
        self.labels = {"model": args["model_name"], "version": str(args["model_version"])}
        self.metrics = _Metrics(self.labels)
        self.scheduler = None
        if _param(config, "batching", "on") != "off":
            max_batch = int(_param(config, "max_batch", "0") or 0)
            kv_cache_gb = float(_param(config, "kv_cache_gb", "0") or 0) or None
            self.scheduler = self.runner.batching(max_batch, self.metrics.step, kv_cache_gb)
        self.metrics.max_batch(self.scheduler.max_batch if self.scheduler is not None else 1)
        self.metrics.healthy(True)
        self.stall_s = float(_param(config, "stall_s", "120") or 120)
        self.closing = threading.Event()
        if self.scheduler is not None:
            threading.Thread(target=self._watch, name="gates-scheduler-watch", daemon=True).start()
        from gates.triton.request_log import RequestLog  # importable now, as above

        log = _param(config, "request_log")
        self.request_log = RequestLog(log, args["model_name"]) if log else None
        self.direct: queue.Queue[Any] = queue.Queue()
        self.worker = threading.Thread(target=self._serve_direct, name="gates-one-at-a-time", daemon=True)
        self.worker.start()

    def execute(self, requests: list[Any]) -> None:
        for request in requests:
            sender = request.get_response_sender()
            try:
                inputs = _inputs(request)
                streamed = inputs.get("STREAM") is not None and bool(inputs["STREAM"].reshape(-1)[0])
                timer = self.request_log.timer() if self.request_log is not None and streamed else None
                if streamed and self.scheduler is not None and not self._sampling(inputs):
                    self._submit(inputs, sender, timer)
                else:
                    self.direct.put((inputs, sender, streamed, timer))
            except Exception as exc:  # report per request; never take the model down
                _fail(sender, exc)
        return None

    def _watch(self) -> None:
        """A scheduler that died or whose step hangs marks the model unhealthy in the metrics (the
        load stage then stops the run as INCONCLUSIVE, naming the arm) and says why in the log."""
        assert self.scheduler is not None
        every = max(0.001, min(1.0, self.stall_s / 2))  # looks often enough to see a step outlive stall_s
        while not self.closing.wait(every):
            why = self.scheduler.failure()
            if why is None and self.scheduler.stalled(self.stall_s):
                why = f"an engine step has run for more than {self.stall_s:.0f} s"
            if why is not None:
                self.metrics.healthy(False)
                print(f"gates: {self.labels['model']}: the engine's scheduler is unhealthy: {why}", file=sys.stderr)
                return

    def _serve_direct(self) -> None:
        """Requests the scheduler does not take, one at a time, in arrival order."""
        final = pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL
        while True:
            item = self.direct.get()
            if item is None:
                return
            inputs, sender, streamed, timer = item
            try:
                if streamed:
                    # each token is a step of one sequence: the same evidence and busy time as the
                    # scheduler's steps, so a one-at-a-time arm is measured like a batching one
                    last = time.perf_counter()
                    for tensors in self._stream(inputs):
                        now = time.perf_counter()
                        self.metrics.step(1, now - last)
                        sender.send(pb_utils.InferenceResponse(output_tensors=tensors))
                        if timer is not None:
                            timer.token()
                        last = time.perf_counter()
                    sender.send(flags=final)
                    if timer is not None:
                        timer.done(None)
                else:
                    sender.send(pb_utils.InferenceResponse(output_tensors=self._one(inputs)), flags=final)
            except Exception as exc:
                if timer is not None:
                    timer.done(str(exc))
                _fail(sender, exc)

    def _submit(self, inputs: dict[str, Any], sender: Any, timer: Any = None) -> None:
        """A greedy streamed request to the engine's scheduler; its tokens are sent as they come."""
        from gates.engines.batching import Job

        ids, max_new = self._prompt(inputs)
        decode = self.runner.tokenizer.decode
        generated: list[int] = []
        prompt_tokens = pb_utils.Tensor("PROMPT_TOKENS", np.array([len(ids)], dtype=np.int32))

        def on_token(token: int) -> None:
            if self.delay_s:  # the scheduler's thread waits: every sequence of this model is slower
                time.sleep(self.delay_s)
            generated.append(token)
            text = decode(generated, skip_special_tokens=True)
            previous = decode(generated[:-1], skip_special_tokens=True)
            piece = pb_utils.Tensor("TEXT", np.array([text[len(previous) :].encode("utf-8")], dtype=np.object_))
            ids_out = pb_utils.Tensor("TOKEN_IDS", np.array([token], dtype=np.int64))
            sender.send(pb_utils.InferenceResponse(output_tensors=[piece, ids_out, prompt_tokens]))
            if timer is not None:
                timer.token()

        def on_done(error: str | None) -> None:
            if timer is not None:
                timer.done(error)
            if error is None:
                sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
            else:
                _fail(sender, RuntimeError(error))

        cancelled = getattr(sender, "is_cancelled", None)
        assert self.scheduler is not None  # execute() sends here only when there is one
        self.scheduler.submit(Job(ids, max_new, on_token, on_done, cancelled or (lambda: False)))

    def _prompt(self, inputs: dict[str, Any]) -> tuple[list[int], int]:
        if "PROMPT_IDS" in inputs:
            ids = [int(i) for i in inputs["PROMPT_IDS"].reshape(-1)]
        else:
            prompt = inputs["PROMPT"].reshape(-1)[0]
            prompt = prompt.decode("utf-8") if isinstance(prompt, bytes) else str(prompt)
            ids = self.runner.encode(prompt)
        max_new = int(inputs["MAX_NEW_TOKENS"].reshape(-1)[0])
        return ids, max(1, min(max_new, self.runner.max_len - len(ids)))

    def _sampling(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Keyword arguments for the runner: none (greedy) unless TEMPERATURE > 0 was sent."""
        temperature = inputs.get("TEMPERATURE")
        t = float(temperature.reshape(-1)[0]) if temperature is not None else 0.0
        if not np.isfinite(t) or t < 0:
            raise ValueError(f"TEMPERATURE must be a finite number ≥ 0, got {t}")
        if t == 0:
            return {}
        seed = inputs.get("SEED")
        return {"temperature": t, "seed": int(seed.reshape(-1)[0]) if seed is not None else 0}

    def _stream(self, inputs: dict[str, Any]) -> Any:
        """Greedy (or sampled) decoding, one token per response."""
        ids, max_new = self._prompt(inputs)
        decode = self.runner.tokenizer.decode
        generated: list[int] = []
        for token in self.runner.stream(ids, max_new, **self._sampling(inputs)):
            if self.delay_s:
                time.sleep(self.delay_s)
            generated.append(token)
            text = decode(generated, skip_special_tokens=True)
            previous = decode(generated[:-1], skip_special_tokens=True)
            yield [
                pb_utils.Tensor("TEXT", np.array([text[len(previous) :].encode("utf-8")], dtype=np.object_)),
                pb_utils.Tensor("TOKEN_IDS", np.array([token], dtype=np.int64)),
                pb_utils.Tensor("PROMPT_TOKENS", np.array([len(ids)], dtype=np.int32)),
            ]

    def _one(self, inputs: dict[str, Any]) -> list[Any]:
        ids, max_new = self._prompt(inputs)
        top_k_in = inputs.get("TOP_K")
        top_k = int(top_k_in.reshape(-1)[0]) if top_k_in is not None else 0
        forced = inputs.get("FORCED_IDS")
        selected_ids = inputs.get("LOGPROB_IDS")
        if forced is not None:
            token_ids = [int(t) for t in forced.reshape(-1)]
            if len(ids) + len(token_ids) > self.runner.max_len:
                raise ValueError(f"prompt+forced length {len(ids) + len(token_ids)} exceeds {self.runner.max_len}")
            prefill = inputs.get("PREFILL")
            one_pass = prefill is not None and bool(prefill.reshape(-1)[0])
            score_prefill = getattr(self.runner, "score_prefill", None)
            if not one_pass:
                logprobs = self.runner.score(ids, token_ids)
            elif score_prefill is None:
                raise ValueError(f"engine {type(self.runner).__name__} has no one-pass (prefill) scoring")
            else:
                logprobs = score_prefill(ids, token_ids)
        else:
            one_pass = False
            token_ids, logprobs = self.runner.generate(ids, max_new, **self._sampling(inputs))
        n = len(token_ids)
        k = min(top_k, logprobs.shape[-1]) if n else 0
        if k > 0 and one_pass and k < logprobs.shape[-1]:  # [T, vocab] for whole windows: no full sort
            from gates.triton.topk import top_k_rows  # importable after initialize(), as above

            top_ids, top_lp = top_k_rows(logprobs, k)
        elif k > 0:
            top_ids = np.argsort(-logprobs, axis=-1, kind="stable")[:, :k]
            top_lp = np.take_along_axis(logprobs, top_ids, axis=-1)
        else:
            top_ids, top_lp = np.zeros((n, 0), dtype=np.int64), np.zeros((n, 0), dtype=np.float32)
        if selected_ids is not None:
            sel = np.asarray(selected_ids, dtype=np.int64)
            if sel.shape[0] != n:
                raise ValueError(f"LOGPROB_IDS has {sel.shape[0]} rows, expected {n}")
            selected = np.take_along_axis(logprobs, sel, axis=-1)
        else:
            selected = np.zeros((n, 0), dtype=np.float32)
        text = self.runner.tokenizer.decode(token_ids, skip_special_tokens=True)
        return [
            pb_utils.Tensor("TEXT", np.array([text.encode("utf-8")], dtype=np.object_)),
            pb_utils.Tensor("TOKEN_IDS", np.asarray(token_ids, dtype=np.int64)),
            pb_utils.Tensor("TOP_IDS", top_ids.astype(np.int64)),
            pb_utils.Tensor("TOP_LOGPROBS", top_lp.astype(np.float32)),
            pb_utils.Tensor("SELECTED_LOGPROBS", selected.astype(np.float32)),
            pb_utils.Tensor("PROMPT_TOKENS", np.array([len(ids)], dtype=np.int32)),
        ]

    def finalize(self) -> None:
        self.closing.set()
        if self.scheduler is not None:
            self.scheduler.close()
        self.direct.put(None)
        self.worker.join(timeout=30)
        del self.runner


_INPUTS = (
    "PROMPT",
    "MAX_NEW_TOKENS",
    "TOP_K",
    "FORCED_IDS",
    "LOGPROB_IDS",
    "STREAM",
    "TEMPERATURE",
    "SEED",
    "PROMPT_IDS",
    "PREFILL",
)


def _inputs(request: Any) -> dict[str, Any]:
    """The request's tensors as numpy copies: they are read after ``execute`` returns, on other threads."""
    out = {}
    for name in _INPUTS:
        value = _optional(request, name)
        if value is not None:
            out[name] = np.array(value, copy=True)
    return out


def _fail(sender: Any, exc: BaseException) -> None:
    error = pb_utils.TritonError(f"{type(exc).__name__}: {exc}")
    with contextlib.suppress(Exception):  # the request was already closed (cancelled, or its client went away)
        sender.send(pb_utils.InferenceResponse(error=error), flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)


class _Metrics:
    """The scheduler's steps in Triton's metrics endpoint (custom metric families of the Python backend)."""

    def __init__(self, labels: dict[str, str]) -> None:
        counter, gauge = pb_utils.MetricFamily.COUNTER, pb_utils.MetricFamily.GAUGE
        self.labels = labels
        self.steps_family = pb_utils.MetricFamily(
            name="gates_engine_steps_total", description="engine steps, by sequences in the step", kind=counter
        )
        busy = pb_utils.MetricFamily(
            name="gates_engine_busy_seconds_total", description="time inside engine steps", kind=counter
        )
        tokens = pb_utils.MetricFamily(
            name="gates_engine_tokens_total", description="tokens from engine steps", kind=counter
        )
        size = pb_utils.MetricFamily(
            name="gates_engine_max_batch", description="sequences the engine may run in one step", kind=gauge
        )
        health = pb_utils.MetricFamily(
            name="gates_engine_healthy", description="1 while the engine's scheduler runs, 0 once it died", kind=gauge
        )
        self.families = [self.steps_family, busy, tokens, size, health]
        self.health = health.Metric(labels=labels)
        self.busy = busy.Metric(labels=labels)
        self.tokens = tokens.Metric(labels=labels)
        self.size = size.Metric(labels=labels)
        self.steps: dict[int, Any] = {}

    def healthy(self, ok: bool) -> None:
        self.health.set(1.0 if ok else 0.0)

    def max_batch(self, n: int) -> None:
        self.size.set(float(n))

    def step(self, sequences: int, seconds: float) -> None:
        metric = self.steps.get(sequences)
        if metric is None:
            metric = self.steps[sequences] = self.steps_family.Metric(labels={**self.labels, "batch": str(sequences)})
        metric.increment(1.0)
        self.busy.increment(seconds)
        self.tokens.increment(float(sequences))
