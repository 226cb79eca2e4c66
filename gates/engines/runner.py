"""What a served model does, whatever engine runs it: the one interface Triton's Python model calls.

An engine builds an artifact (``EngineBuild.serve_path``) and knows how to run it: a ``Runner``
generates greedily (streamed or with per-position log-probabilities) and scores a forced
continuation (teacher forcing). With ``temperature > 0`` it samples instead: every engine draws
with :class:`Sampler` from softmax(logits / temperature), so one seed gives one answer whatever
the engine, and the two arms of a comparison share their random numbers. The Triton model
(``gates/triton/python_model.py``) only turns tensors into calls and results into tensors, so
load and drift reach every engine the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from gates.engines.batching import BatchScheduler


class Runner(Protocol):
    tokenizer: Any  # transformers' tokenizer of the model (decoding, chat templates)
    max_len: int  # context length in tokens
    stop_ids: frozenset[int]  # every token that ends a generation

    def encode(self, prompt: str) -> list[int]:
        """Token ids of a prompt (special tokens of a rendered chat included)."""

    def stream(self, ids: list[int], max_new: int, temperature: float = 0.0, seed: int = 0) -> Iterator[int]:
        """Tokens one by one (greedy, or sampled when ``temperature > 0``); the last may be a stop token."""

    def generate(
        self, ids: list[int], max_new: int, temperature: float = 0.0, seed: int = 0
    ) -> tuple[list[int], NDArray[np.float32]]:
        """Tokens (greedy, or sampled when ``temperature > 0``) and the model's log-probabilities
        (``[len(tokens), vocab]``, at temperature 1) at each position."""

    def score(self, ids: list[int], continuation: list[int]) -> NDArray[np.float32]:
        """Log-probabilities (``[len(continuation), vocab]``) of the positions predicting each forced token.

        Engines with low-bit kernels read the forced tokens one by one, as they generate (ORT
        GenAI's ``append_tokens``, TensorRT-LLM's step hook): reading a context in one pass runs
        other kernels there, and would score another model than the one that is served."""

    def batching(
        self, max_batch: int, on_step: Callable[[int, float], None] | None = None, kv_cache_gb: float | None = None
    ) -> BatchScheduler | None:
        """The engine's own scheduler serving concurrent streamed requests (gates/engines/batching.py),
        sized to ``max_batch`` sequences and a KV cache of ``kv_cache_gb`` where the engine lets them be
        (0 / None: the engine's default), or None where this runner has none (its requests are then
        served one at a time)."""


def log_softmax(logits: NDArray[Any]) -> NDArray[np.float32]:
    x = logits.astype(np.float64)
    x = x - x.max(axis=-1, keepdims=True)
    out: NDArray[np.float32] = (x - np.log(np.exp(x).sum(axis=-1, keepdims=True))).astype(np.float32)
    return out


class Sampler:
    """Draws tokens from softmax(logits / temperature) by inverse CDF with a seeded generator.

    One uniform number per position, from ``numpy``'s PCG64 seeded with ``seed``: the token is
    where that number falls in the cumulative distribution (vocabulary order). Two models asked
    with the same seed use the same numbers (common random numbers), so where their
    distributions are close they draw the same token and the paired comparison sees only the
    models' difference, not the luck of the draw.
    """

    def __init__(self, temperature: float, seed: int):
        if not temperature > 0:
            raise ValueError(f"sampling needs a temperature > 0, got {temperature}")
        self.temperature = float(temperature)
        self.rng = np.random.default_rng(int(seed))

    def __call__(self, logits: NDArray[Any]) -> int:
        x = np.asarray(logits, dtype=np.float64).reshape(-1) / self.temperature
        p = np.exp(x - x.max())
        cdf = np.cumsum(p)
        u = float(self.rng.random()) * float(cdf[-1])
        return int(min(int(np.searchsorted(cdf, u, side="right")), x.size - 1))
