"""Triton Python-backend model serving a causal LM from a gates artifact (copied as model.py).

Runs inside Triton's Python stub, not in the gates process. Inputs and outputs:

- ``PROMPT`` (BYTES [1]), ``MAX_NEW_TOKENS`` (INT32 [1]), optional ``TOP_K`` (INT32 [1]).
- optional ``FORCED_IDS`` (INT64 [-1]): score these continuation tokens instead of generating
  (teacher forcing), so two models can be compared position by position on the same context.
- optional ``LOGPROB_IDS`` (INT64 [-1, -1]): per position, token ids whose log-probabilities to
  return in ``SELECTED_LOGPROBS``.
- optional ``STREAM`` (BOOL [1]): send one response per generated token (``TEXT`` piece and
  ``TOKEN_IDS`` of that token) instead of one response with everything.
- ``TEXT`` (BYTES [1]), ``TOKEN_IDS`` (INT64 [-1]), ``TOP_IDS`` / ``TOP_LOGPROBS`` ([-1, -1]),
  ``SELECTED_LOGPROBS`` (FP32 [-1, -1]), ``PROMPT_TOKENS`` (INT32 [1]).

The model is *decoupled* (Triton's streaming transaction policy): every request is answered
through its response sender and closed with a final flag, so clients see tokens as they come.
"""

from __future__ import annotations

import json
import sys
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
        import torch

        from gates.models.loader import load_model, stop_token_ids

        self.torch = torch
        threads = int(_param(config, "threads", "1") or 1)
        self.model, self.tokenizer = load_model(
            Path(_param(config, "artifact_path")), threads=threads, fold_weights=True
        )
        self.max_len = int(getattr(self.model.config, "max_position_embeddings", 2048))
        self.stop_ids = frozenset(stop_token_ids(self.model, self.tokenizer))

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

    def _stream(self, request: Any) -> Any:
        """Greedy decoding with the KV cache, one token per response."""
        torch = self.torch
        prompt = _optional(request, "PROMPT").reshape(-1)[0]
        prompt = prompt.decode("utf-8") if isinstance(prompt, bytes) else str(prompt)
        max_new = int(_optional(request, "MAX_NEW_TOKENS").reshape(-1)[0])
        ids = self.tokenizer(prompt, return_tensors="pt")["input_ids"]
        n_prompt = int(ids.shape[1])
        max_new = max(1, min(max_new, self.max_len - n_prompt))
        past, step_input, generated = None, ids, []
        with torch.no_grad():
            for _ in range(max_new):
                out = self.model(input_ids=step_input, past_key_values=past, use_cache=True)
                past = out.past_key_values
                token = int(out.logits[0, -1].argmax())
                generated.append(token)
                text = self.tokenizer.decode(generated, skip_special_tokens=True)
                previous = self.tokenizer.decode(generated[:-1], skip_special_tokens=True)
                yield [
                    pb_utils.Tensor("TEXT", np.array([text[len(previous) :].encode("utf-8")], dtype=np.object_)),
                    pb_utils.Tensor("TOKEN_IDS", np.array([token], dtype=np.int64)),
                    pb_utils.Tensor("PROMPT_TOKENS", np.array([n_prompt], dtype=np.int32)),
                ]
                if token in self.stop_ids:
                    break
                step_input = torch.tensor([[token]])

    def _one(self, request: Any) -> list[Any]:
        torch = self.torch
        prompt = _optional(request, "PROMPT").reshape(-1)[0]
        prompt = prompt.decode("utf-8") if isinstance(prompt, bytes) else str(prompt)
        max_new = int(_optional(request, "MAX_NEW_TOKENS").reshape(-1)[0])
        top_k_in = _optional(request, "TOP_K")
        top_k = int(top_k_in.reshape(-1)[0]) if top_k_in is not None else 0
        forced = _optional(request, "FORCED_IDS")
        selected_ids = _optional(request, "LOGPROB_IDS")

        prompt_ids = self.tokenizer(prompt, return_tensors="pt")["input_ids"]
        n_prompt = int(prompt_ids.shape[1])
        with torch.no_grad():
            if forced is not None:
                cont = torch.as_tensor(forced.reshape(-1), dtype=torch.long)
                if n_prompt + len(cont) > self.max_len:
                    raise ValueError(f"prompt+forced length {n_prompt + len(cont)} exceeds {self.max_len}")
                full = torch.cat([prompt_ids[0], cont]).unsqueeze(0)
                logits = self.model(input_ids=full).logits[0, n_prompt - 1 : n_prompt - 1 + len(cont)]
                token_ids = cont
            else:
                max_new = max(1, min(max_new, self.max_len - n_prompt))
                out = self.model.generate(
                    input_ids=prompt_ids,
                    attention_mask=torch.ones_like(prompt_ids),
                    max_new_tokens=max_new,
                    do_sample=False,
                    output_logits=True,
                    return_dict_in_generate=True,
                    pad_token_id=self.tokenizer.pad_token_id,
                    eos_token_id=sorted(self.stop_ids) or None,
                )
                token_ids = out.sequences[0, n_prompt:]
                logits = torch.stack([step[0] for step in out.logits])[: len(token_ids)]
            logprobs = torch.log_softmax(logits.float(), dim=-1)

        k = min(top_k, logprobs.shape[-1])
        if k > 0:
            top_lp, top_ids = torch.topk(logprobs, k, dim=-1)
        else:
            top_lp = torch.zeros((len(token_ids), 0))
            top_ids = torch.zeros((len(token_ids), 0), dtype=torch.long)
        if selected_ids is not None:
            sel = torch.as_tensor(selected_ids, dtype=torch.long)
            if sel.shape[0] != logprobs.shape[0]:
                raise ValueError(f"LOGPROB_IDS has {sel.shape[0]} rows, expected {logprobs.shape[0]}")
            selected = torch.gather(logprobs, 1, sel)
        else:
            selected = torch.zeros((len(token_ids), 0))
        text = self.tokenizer.decode(token_ids, skip_special_tokens=True)
        return [
            pb_utils.Tensor("TEXT", np.array([text.encode("utf-8")], dtype=np.object_)),
            pb_utils.Tensor("TOKEN_IDS", token_ids.numpy().astype(np.int64)),
            pb_utils.Tensor("TOP_IDS", top_ids.numpy().astype(np.int64)),
            pb_utils.Tensor("TOP_LOGPROBS", top_lp.numpy().astype(np.float32)),
            pb_utils.Tensor("SELECTED_LOGPROBS", selected.numpy().astype(np.float32)),
            pb_utils.Tensor("PROMPT_TOKENS", np.array([n_prompt], dtype=np.int32)),
        ]

    def finalize(self) -> None:
        self.model = None
