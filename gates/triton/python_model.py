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
- ``TEXT`` (BYTES [1]), ``TOKEN_IDS`` (INT64 [-1]), ``TOP_IDS`` / ``TOP_LOGPROBS`` ([-1, -1]),
  ``SELECTED_LOGPROBS`` (FP32 [-1, -1]), ``PROMPT_TOKENS`` (INT32 [1]).

The model is *decoupled* (Triton's streaming transaction policy): every request is answered
through its response sender and closed with a final flag, so clients see tokens as they come.
"""

from __future__ import annotations

import json
import sys
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

    def execute(self, requests: list[Any]) -> None:
        final = pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL
        for request in requests:
            sender = request.get_response_sender()
            try:
                stream = _optional(request, "STREAM")
                if stream is not None and bool(stream.reshape(-1)[0]):
                    for tensors in self._stream(request):
                        sender.send(pb_utils.InferenceResponse(output_tensors=tensors))
                    sender.send(flags=final)
                else:
                    sender.send(pb_utils.InferenceResponse(output_tensors=self._one(request)), flags=final)
            except Exception as exc:  # report per request; never take the model down
                error = pb_utils.TritonError(f"{type(exc).__name__}: {exc}")
                sender.send(pb_utils.InferenceResponse(error=error), flags=final)
        return None

    def _prompt(self, request: Any) -> tuple[list[int], int]:
        prompt = _optional(request, "PROMPT").reshape(-1)[0]
        prompt = prompt.decode("utf-8") if isinstance(prompt, bytes) else str(prompt)
        ids = self.runner.encode(prompt)
        max_new = int(_optional(request, "MAX_NEW_TOKENS").reshape(-1)[0])
        return ids, max(1, min(max_new, self.runner.max_len - len(ids)))

    def _sampling(self, request: Any) -> dict[str, Any]:
        """Keyword arguments for the runner: none (greedy) unless TEMPERATURE > 0 was sent."""
        temperature = _optional(request, "TEMPERATURE")
        t = float(temperature.reshape(-1)[0]) if temperature is not None else 0.0
        if not np.isfinite(t) or t < 0:
            raise ValueError(f"TEMPERATURE must be a finite number ≥ 0, got {t}")
        if t == 0:
            return {}
        seed = _optional(request, "SEED")
        return {"temperature": t, "seed": int(seed.reshape(-1)[0]) if seed is not None else 0}

    def _stream(self, request: Any) -> Any:
        """Greedy (or sampled) decoding, one token per response."""
        ids, max_new = self._prompt(request)
        decode = self.runner.tokenizer.decode
        generated: list[int] = []
        for token in self.runner.stream(ids, max_new, **self._sampling(request)):
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

    def _one(self, request: Any) -> list[Any]:
        ids, max_new = self._prompt(request)
        top_k_in = _optional(request, "TOP_K")
        top_k = int(top_k_in.reshape(-1)[0]) if top_k_in is not None else 0
        forced = _optional(request, "FORCED_IDS")
        selected_ids = _optional(request, "LOGPROB_IDS")
        if forced is not None:
            token_ids = [int(t) for t in forced.reshape(-1)]
            if len(ids) + len(token_ids) > self.runner.max_len:
                raise ValueError(f"prompt+forced length {len(ids) + len(token_ids)} exceeds {self.runner.max_len}")
            logprobs = self.runner.score(ids, token_ids)
        else:
            token_ids, logprobs = self.runner.generate(ids, max_new, **self._sampling(request))
        n = len(token_ids)
        k = min(top_k, logprobs.shape[-1]) if n else 0
        if k > 0:
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
        del self.runner
