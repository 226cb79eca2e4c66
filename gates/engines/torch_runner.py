"""The PyTorch runner: a model loaded by gates' loader (a checkpoint, a Model Optimizer artifact, a
``torch``, ``torch-int8`` or ``torch-fp8`` engine) run in eager mode on the engine's device (CPU
unless its ``engine.json`` says CUDA), with the KV cache when streaming or sampling.

Greedy generation is transformers' ``generate``; sampled generation (``temperature > 0``) is a
KV-cached loop drawing each token with the shared :class:`~gates.engines.runner.Sampler`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gates.engines.runner import Sampler
from gates.engines.torch_batching import TorchBatchScheduler
from gates.engines.torch_load import load_engine_model
from gates.models.loader import stop_token_ids
from gates.models.placement import model_device


class TorchRunner:
    def __init__(self, path: Path, threads: int):
        import torch

        self.torch = torch
        self.model, self.tokenizer = load_engine_model(path, threads=threads, fold_weights=True)
        self.device = model_device(self.model)  # inputs go where the weights are
        self.max_len = int(getattr(self.model.config, "max_position_embeddings", 2048))
        self.stop_ids = frozenset(stop_token_ids(self.model, self.tokenizer))

    def encode(self, prompt: str) -> list[int]:
        return [int(i) for i in self.tokenizer(prompt)["input_ids"]]

    def _steps(self, ids: list[int], max_new: int, sample: Sampler | None) -> Iterator[tuple[int, Any]]:
        """(token, that position's logits) with the KV cache; argmax unless ``sample`` draws."""
        torch = self.torch
        past, step_input = None, torch.tensor([ids], device=self.device)
        with torch.no_grad():
            for _ in range(max_new):
                out = self.model(input_ids=step_input, past_key_values=past, use_cache=True)
                past = out.past_key_values
                logits = out.logits[0, -1]
                token = int(logits.argmax()) if sample is None else sample(logits.float().cpu().numpy())
                yield token, logits
                if token in self.stop_ids:
                    return
                step_input = torch.tensor([[token]], device=self.device)

    def stream(self, ids: list[int], max_new: int, temperature: float = 0.0, seed: int = 0) -> Iterator[int]:
        sample = Sampler(temperature, seed) if temperature > 0 else None
        for token, _ in self._steps(ids, max_new, sample):
            yield token

    def generate(
        self, ids: list[int], max_new: int, temperature: float = 0.0, seed: int = 0
    ) -> tuple[list[int], NDArray[np.float32]]:
        torch = self.torch
        if temperature > 0:
            steps = list(self._steps(ids, max_new, Sampler(temperature, seed)))
            if not steps:
                return [], np.zeros((0, 0), dtype=np.float32)
            rows = torch.log_softmax(torch.stack([s[1] for s in steps]).float(), dim=-1)
            return [s[0] for s in steps], rows.cpu().numpy().astype(np.float32)
        prompt = torch.tensor([ids], device=self.device)
        with torch.no_grad():
            out = self.model.generate(
                input_ids=prompt,
                attention_mask=torch.ones_like(prompt),
                max_new_tokens=max_new,
                do_sample=False,
                output_logits=True,
                return_dict_in_generate=True,
                pad_token_id=self.tokenizer.pad_token_id,
                eos_token_id=sorted(self.stop_ids) or None,
            )
            tokens = out.sequences[0, len(ids) :]
            logits = torch.stack([step[0] for step in out.logits])[: len(tokens)]
            logprobs = torch.log_softmax(logits.float(), dim=-1)
        return [int(t) for t in tokens], logprobs.cpu().numpy().astype(np.float32)

    def score(self, ids: list[int], continuation: list[int]) -> NDArray[np.float32]:
        torch = self.torch
        full = torch.tensor([ids + continuation], device=self.device)
        with torch.no_grad():
            logits = self.model(input_ids=full).logits[0, len(ids) - 1 : len(ids) - 1 + len(continuation)]
            out: NDArray[np.float32] = torch.log_softmax(logits.float(), dim=-1).cpu().numpy().astype(np.float32)
        return out

    def score_prefill(self, ids: list[int], continuation: list[int]) -> NDArray[np.float32]:
        """One pass over prompt and continuation: what :meth:`score` already does here."""
        return self.score(ids, continuation)

    def batching(
        self, max_batch: int, on_step: Callable[[int, float], None] | None = None, kv_cache_gb: float | None = None
    ) -> TorchBatchScheduler:
        """transformers' continuous batching (``ContinuousBatchingManager``, paged attention) on this
        runner's weights, for every PyTorch engine: ``torch``, ``torch-int8`` and ``torch-fp8``, whose
        integer and FP8 layers are ordinary modules of the model and see the packed batch like any
        Linear (gates/engines/torch_batching.py). ``max_batch`` 0: 16 sequences on CPU, 64 on CUDA."""
        return TorchBatchScheduler(
            self.model,
            self.stop_ids,
            self.max_len,
            max_batch,
            on_step,
            kv_cache_gb=kv_cache_gb,
            pad_token_id=self.tokenizer.pad_token_id,
        )
