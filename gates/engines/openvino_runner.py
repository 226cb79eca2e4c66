"""An OpenVINO IR behind the Runner interface, and OpenVINO GenAI's scheduler behind StepEngine.

Two ways through one IR:

- direct (``generate``, ``score``, ``stream`` one at a time, sampling): the stateful IR compiled
  by ``openvino`` and run with an infer request, one sequence at a time; every position's logits
  are there, so KL and top-1 are exact. Forced tokens are read one by one after the prompt, as
  the served model generates them (decode, not prefill, runs there).
- batched (``batching``): ``openvino_genai.ContinuousBatchingPipeline`` on the same IR, which it
  rewrites to paged attention; its scheduler picks each step's sequences (``max_num_seqs``) within
  the KV-cache budget (``cache_size``). It returns only the chosen token's log-probability, so the
  gate scores drift on the direct path (tests/engines/test_openvino.py checks both paths give the
  same greedy answers).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gates.engines.batching import Emitted, Job, SchedulerThread
from gates.engines.openvino_export import MODEL_XML
from gates.engines.ort_genai import _TokenizersEncoder
from gates.engines.runner import Sampler, log_softmax
from gates.models.loader import prepare_tokenizer, stop_token_ids


def compile_properties(spec: dict[str, Any], threads: int) -> dict[str, Any]:
    """CPU plugin settings of both paths: f32 activations and KV cache (only the weights differ
    between the arms), dynamic int8 activations for compressed weights only where the build asked
    for them (``engine.accuracy_level`` 4), the arm's share of the cores."""
    props: dict[str, Any] = {
        "INFERENCE_PRECISION_HINT": "f32",
        "KV_CACHE_PRECISION": "f32",
        "INFERENCE_NUM_THREADS": int(threads),
    }
    props["DYNAMIC_QUANTIZATION_GROUP_SIZE"] = int(spec.get("dynamic_quantization_group_size", 0))
    return props


class OpenVinoRunner:
    """A built ``openvino`` engine directory (engine.json + openvino_model.xml)."""

    def __init__(self, path: Path, threads: int, tokenizer: Any = None):
        import openvino as ov

        self.path = path
        self.threads = threads
        self.spec: dict[str, Any] = (
            json.loads((path / "engine.json").read_text()) if (path / "engine.json").is_file() else {}
        )
        self.properties = compile_properties(self.spec, threads)
        self.compiled = ov.Core().compile_model(str(path / MODEL_XML), "CPU", {**self.properties, "NUM_STREAMS": 1})
        self.request = self.compiled.create_infer_request()
        config = json.loads((path / "config.json").read_text())
        self.max_len = int(config.get("max_position_embeddings", 2048))
        generation = path / "generation_config.json"  # the model's own stops (SmolLM2: <|im_end|>)
        configured = json.loads(generation.read_text()).get("eos_token_id") if generation.is_file() else None
        model_stops = {int(configured)} if isinstance(configured, int) else {int(i) for i in configured or []}
        light = self.spec.get("tokenizer") if tokenizer is None else None
        if light and light.get("library") == "tokenizers":  # verified equal to transformers' at build
            self.tokenizer: Any = _TokenizersEncoder(path / "tokenizer.json")
            self.stop_ids = frozenset(model_stops | {int(i) for i in light["stop_ids"]})
            return
        if tokenizer is None:
            from transformers import AutoTokenizer

            tokenizer = prepare_tokenizer(AutoTokenizer.from_pretrained(path, local_files_only=True))
        self.tokenizer = tokenizer
        self.stop_ids = frozenset(model_stops | set(stop_token_ids(None, tokenizer)))

    def encode(self, prompt: str) -> list[int]:
        return [int(i) for i in self.tokenizer(prompt)["input_ids"]]

    # the direct path: one sequence, the IR's own state holds its cache
    def _feed(self, tokens: list[int], past: int) -> NDArray[np.float32]:
        """Run ``tokens`` after ``past`` cached positions; the logits of the last one."""
        n = len(tokens)
        self.request.infer(
            {
                "input_ids": np.asarray([tokens], dtype=np.int64),
                "attention_mask": np.ones((1, past + n), dtype=np.int64),
                "position_ids": np.arange(past, past + n, dtype=np.int64)[None],
                "beam_idx": np.zeros(1, dtype=np.int32),
            }
        )
        logits: NDArray[np.float32] = np.array(self.request.get_tensor("logits").data[0, -1], dtype=np.float32)
        return logits

    def _decode(
        self, ids: list[int], max_new: int, pick: Callable[[NDArray[np.float32]], int]
    ) -> Iterator[tuple[int, NDArray[np.float32]]]:
        if len(ids) + max_new > self.max_len:
            raise ValueError(f"prompt+new tokens {len(ids) + max_new} exceed the context {self.max_len}")
        self.request.reset_state()
        logits = self._feed(ids, 0)
        past = len(ids)
        for step in range(max_new):
            token = pick(logits)
            yield token, logits
            if token in self.stop_ids or step == max_new - 1:
                return
            logits = self._feed([token], past)
            past += 1

    def stream(self, ids: list[int], max_new: int, temperature: float = 0.0, seed: int = 0) -> Iterator[int]:
        pick = Sampler(temperature, seed) if temperature > 0 else _argmax
        for token, _ in self._decode(ids, max_new, pick):
            yield token

    def generate(
        self, ids: list[int], max_new: int, temperature: float = 0.0, seed: int = 0
    ) -> tuple[list[int], NDArray[np.float32]]:
        pick = Sampler(temperature, seed) if temperature > 0 else _argmax
        tokens, rows = [], []
        for token, logits in self._decode(ids, max_new, pick):
            tokens.append(token)
            rows.append(log_softmax(logits))
        return tokens, np.stack(rows) if rows else np.zeros((0, 0), dtype=np.float32)

    def score(self, ids: list[int], continuation: list[int]) -> NDArray[np.float32]:
        if not continuation:
            return np.zeros((0, 0), dtype=np.float32)
        self.request.reset_state()
        logits = self._feed(ids, 0)
        rows = [log_softmax(logits)]
        for past, token in enumerate(continuation[:-1], start=len(ids)):
            rows.append(log_softmax(self._feed([token], past)))
        return np.stack(rows)

    def batching(
        self,
        max_batch: int,
        on_step: Callable[[int, float], None] | None = None,
        kv_cache_gb: float | None = None,
    ) -> SchedulerThread:
        """OpenVINO GenAI's ``ContinuousBatchingPipeline`` on this runner's IR: at most ``max_batch``
        sequences a step (0: the pipeline's default, 256), a KV cache of ``kv_cache_gb`` (whole GB,
        rounded up: the pipeline's unit; None: grown as needed)."""

        def make() -> OpenVinoStepEngine:
            return OpenVinoStepEngine(self.path, self.properties, self.stop_ids, max_batch, kv_cache_gb, self.max_len)

        scheduler = SchedulerThread(make, self.stop_ids, max_batch, on_step, name="openvino-genai-pipeline")
        scheduler.max_batch = max_batch or DEFAULT_MAX_NUM_SEQS
        return scheduler


DEFAULT_MAX_NUM_SEQS = 256  # SchedulerConfig's default in openvino-genai 2026.4


def _argmax(logits: NDArray[np.float32]) -> int:
    return int(np.argmax(logits))


class _Sequence:
    """One admitted request: its pipeline handle (the Emitted handle is this object), or why the
    pipeline could not take it (reported at the next step: the request fails alone)."""

    def __init__(self, handle: Any, error: str | None = None) -> None:
        self.handle = handle
        self.error = error


class OpenVinoStepEngine:
    """``ContinuousBatchingPipeline`` behind :class:`gates.engines.batching.StepEngine` (one thread)."""

    def __init__(
        self,
        path: Path,
        properties: dict[str, Any],
        stop_ids: frozenset[int],
        max_batch: int,
        kv_cache_gb: float | None,
        max_len: int,
    ) -> None:
        import openvino as ov
        import openvino_genai as ovg

        self.ov = ov
        self.ovg = ovg
        config = ovg.SchedulerConfig()
        if max_batch > 0:
            config.max_num_seqs = max_batch
        if kv_cache_gb is not None:
            config.cache_size = max(1, math.ceil(kv_cache_gb))
        self.pipeline = ovg.ContinuousBatchingPipeline(str(path), config, "CPU", dict(properties))
        self.stop_ids = sorted(stop_ids)
        self.max_len = max_len
        self.ids = itertools.count()
        self.live: dict[int, _Sequence] = {}
        status = ovg.GenerationStatus
        self.running = status.RUNNING
        self.failed = {status.IGNORED: "the pipeline could not schedule it (KV cache too small for the prompt)"}

    def admit(self, job: Job) -> Any:
        if len(job.ids) + job.max_new > self.max_len:
            why = f"prompt+new tokens {len(job.ids) + job.max_new} exceed the context {self.max_len}"
            return self._keep(_Sequence(None, why))
        config = self.ovg.GenerationConfig()
        config.max_new_tokens = job.max_new
        config.do_sample = False
        config.stop_token_ids = set(self.stop_ids)  # the pipeline ends them itself, one step earlier than a drop
        ids = self.ov.Tensor(np.asarray([job.ids], dtype=np.int64))
        try:
            sequence = _Sequence(self.pipeline.add_request(next(self.ids), ids, config))
        except Exception as exc:  # this request's problem (the pipeline validates it): it fails alone
            sequence = _Sequence(None, f"the pipeline refused the request: {type(exc).__name__}: {exc}")
        return self._keep(sequence)

    def _keep(self, sequence: _Sequence) -> _Sequence:
        self.live[id(sequence)] = sequence
        return sequence

    def step(self) -> list[Emitted]:
        if any(s.handle is not None for s in self.live.values()) or self.pipeline.has_non_finished_requests():
            self.pipeline.step()
        out: list[Emitted] = []
        for key, sequence in list(self.live.items()):
            handle = sequence.handle
            if handle is None:
                out.append(Emitted(sequence, None, True, sequence.error))
                del self.live[key]
                continue
            tokens: list[int] = []
            if handle.can_read():
                for output in handle.read().values():  # tokens since the last read (one sequence: one output)
                    tokens += [int(t) for t in output.generated_ids]
            status = handle.get_status()
            finished = status != self.running
            error = self.failed.get(status)
            for i, token in enumerate(tokens):
                out.append(Emitted(sequence, token, finished and i == len(tokens) - 1 and error is None))
            if finished and (error is not None or not tokens):
                out.append(Emitted(sequence, None, True, error))
            if finished:
                del self.live[key]
        return out

    def pending(self) -> bool:
        return bool(self.live) or bool(self.pipeline.has_non_finished_requests())

    def drop(self, handle: Any) -> None:
        sequence = self.live.pop(id(handle), None)
        if sequence is not None and sequence.handle is not None:
            sequence.handle.cancel()  # the pipeline frees its blocks at its next step

    def close(self) -> None:
        for sequence in list(self.live.values()):
            self.drop(sequence)
