"""What a served model does, whatever engine runs it: the one interface Triton's Python model calls.

An engine builds an artifact (``EngineBuild.serve_path``) and knows how to run it: a ``Runner``
generates greedily (streamed or with per-position log-probabilities) and scores a forced
continuation (teacher forcing). The Triton model (``gates/triton/python_model.py``) only turns
tensors into calls and results into tensors, so load and drift reach every engine the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray


class Runner(Protocol):
    tokenizer: Any  # transformers' tokenizer of the model (decoding, chat templates)
    max_len: int  # context length in tokens
    stop_ids: frozenset[int]  # every token that ends a generation

    def encode(self, prompt: str) -> list[int]:
        """Token ids of a prompt (special tokens of a rendered chat included)."""

    def stream(self, ids: list[int], max_new: int) -> Iterator[int]:
        """Greedy tokens one by one; the last one may be a stop token."""

    def generate(self, ids: list[int], max_new: int) -> tuple[list[int], NDArray[np.float32]]:
        """Greedy tokens and the log-probabilities (``[len(tokens), vocab]``) each was chosen from."""

    def score(self, ids: list[int], continuation: list[int]) -> NDArray[np.float32]:
        """Log-probabilities (``[len(continuation), vocab]``) of the positions predicting each forced token."""


def log_softmax(logits: NDArray[Any]) -> NDArray[np.float32]:
    x = logits.astype(np.float64)
    x = x - x.max(axis=-1, keepdims=True)
    out: NDArray[np.float32] = (x - np.log(np.exp(x).sum(axis=-1, keepdims=True))).astype(np.float32)
    return out
