"""A built TensorRT-LLM engine as a :class:`~gates.engines.runner.Runner`, inside Triton's Python model.

The engine runs on TensorRT-LLM's Python runtime (``tensorrt_llm.runtime.ModelRunner``), so load
and drift reach it through gates' own protocol exactly as they reach the PyTorch engines: the same
Triton model file, the same client, the same judge. Everything the drift check needs comes from
one hook of that runtime, the logits processor, which sees the model's logits at every step
before a token is chosen:

- ``generate`` records them (the log-probabilities of every generated position);
- ``score`` forces the continuation's tokens one by one and records the logits that predicted
  them (teacher forcing without ``--gather_context_logits``, so the engine measured is the
  engine a deployment would build);
- sampling (``temperature > 0``) forces the token the shared :class:`Sampler` draws from those
  logits, so both arms of a comparison use the same random numbers whatever their engine.

Greedy streaming (the load) attaches no processor: nothing is copied off the GPU per token.
The runtime class is a parameter so tests can drive this adapter with a stand-in that keeps
TensorRT-LLM's documented output contract (``output_ids`` ``[batch, beam, seq]`` with the
prompt, ``sequence_lengths`` ``[batch, beam]``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gates.engines.runner import Sampler, log_softmax
from gates.errors import CapabilityError
from gates.models.loader import prepare_tokenizer

INSTALL_HINT = (
    "the tensorrt-llm backend serves with TensorRT-LLM's Python runtime: install tensorrt_llm from NVIDIA's "
    "index on the GPU runner (`pip install -e '.[gpu]' --extra-index-url https://pypi.nvidia.com`)"
)


def _model_runner_class() -> Any:
    try:
        from tensorrt_llm.runtime import ModelRunner
    except ImportError as exc:
        raise CapabilityError(f"TensorRT-LLM is not importable here ({exc}); {INSTALL_HINT}") from exc
    return ModelRunner


class _StepHook:
    """TensorRT-LLM's logits-processor hook for one sequence: records each step's logits (as float32
    on the host) and, when ``choose`` is given, forces the token it picks from them."""

    def __init__(self, record: bool, choose: Any = None):
        self.record, self.choose = record, choose
        self.rows: list[NDArray[np.float32]] = []
        self.steps = 0

    def __call__(self, step: int, input_ids: Any, scores: Any) -> Any:
        # ``self.steps`` counts the calls: the runtime's own ``step`` base is not part of its contract
        host = scores.reshape(-1, scores.shape[-1])[0].float().cpu().numpy().astype(np.float32)
        if self.record:
            self.rows.append(host)
        if self.choose is not None:
            token = int(self.choose(self.steps, host))
            scores = scores.new_full(scores.shape, float("-inf"))
            scores[..., token] = 0.0
        self.steps += 1
        return scores


class TrtllmRunner:
    def __init__(self, path: Path, runner_class: Any = None):
        """``path``: the engine artifact (``engine.json``, ``engine/`` from trtllm-build, ``tokenizer/``)."""
        from transformers import AutoTokenizer

        spec = json.loads((path / "engine.json").read_text())
        cls = runner_class if runner_class is not None else _model_runner_class()
        self.runtime = cls.from_dir(engine_dir=str(path / "engine"), rank=0)
        self.tokenizer = prepare_tokenizer(AutoTokenizer.from_pretrained(path / "tokenizer", local_files_only=True))
        self.max_len = int(self.runtime.max_seq_len)
        self.stop_ids = frozenset(int(i) for i in spec.get("stop_ids", []))
        self.end_id = min(self.stop_ids) if self.stop_ids else int(self.tokenizer.eos_token_id)
        self.pad_id = int(self.tokenizer.pad_token_id)

    def encode(self, prompt: str) -> list[int]:
        return [int(i) for i in self.tokenizer(prompt)["input_ids"]]

    def _run(self, ids: list[int], max_new: int, hook: _StepHook | None, streaming: bool = False) -> Any:
        import torch

        return self.runtime.generate(
            batch_input_ids=[torch.tensor(ids, dtype=torch.int32)],
            max_new_tokens=max_new,
            end_id=self.end_id,
            pad_id=self.pad_id,
            top_k=1,  # argmax: sampling, where asked, is the hook's forced token
            temperature=1.0,
            streaming=streaming,
            return_dict=True,
            output_sequence_lengths=True,
            logits_processor=hook,
        )

    def _new_tokens(self, out: dict[str, Any], prompt_len: int) -> list[int]:
        """Generated tokens of sequence 0, beam 0, cut after the first stop token."""
        end = int(out["sequence_lengths"][0][0])
        tokens: list[int] = []
        for t in out["output_ids"][0][0][prompt_len:end].tolist():
            tokens.append(int(t))
            if tokens[-1] in self.stop_ids:
                break
        return tokens

    @staticmethod
    def _sampling_hook(temperature: float, seed: int, record: bool) -> _StepHook:
        sampler = Sampler(temperature, seed)
        return _StepHook(record, choose=lambda _step, logits: sampler(logits))

    def stream(self, ids: list[int], max_new: int, temperature: float = 0.0, seed: int = 0) -> Iterator[int]:
        hook = self._sampling_hook(temperature, seed, record=False) if temperature > 0 else None
        sent = 0
        for out in self._run(ids, max_new, hook, streaming=True):
            tokens = self._new_tokens(out, len(ids))
            for token in tokens[sent:]:
                yield token
                if token in self.stop_ids:
                    return
            sent = len(tokens)

    def generate(
        self, ids: list[int], max_new: int, temperature: float = 0.0, seed: int = 0
    ) -> tuple[list[int], NDArray[np.float32]]:
        hook = self._sampling_hook(temperature, seed, record=True) if temperature > 0 else _StepHook(record=True)
        tokens = self._new_tokens(self._run(ids, max_new, hook), len(ids))
        if not tokens:
            return [], np.zeros((0, 0), dtype=np.float32)
        if len(hook.rows) < len(tokens):
            raise RuntimeError(f"TensorRT-LLM called the logits hook {len(hook.rows)} times for {len(tokens)} tokens")
        return tokens, log_softmax(np.stack(hook.rows[: len(tokens)]))

    def score(self, ids: list[int], continuation: list[int]) -> NDArray[np.float32]:
        if not continuation:
            return np.zeros((0, 0), dtype=np.float32)
        hook = _StepHook(record=True, choose=lambda step, _logits: continuation[step])
        self._run(ids, len(continuation), hook)
        if len(hook.rows) < len(continuation):
            raise RuntimeError(
                f"TensorRT-LLM stopped after {len(hook.rows)} of {len(continuation)} forced tokens "
                "(a stop token inside the continuation?)"
            )
        return log_softmax(np.stack(hook.rows[: len(continuation)]))

    def batching(
        self, max_batch: int, on_step: Callable[[int, float], None] | None = None, kv_cache_gb: float | None = None
    ) -> None:
        """None: load and capacity run on the tensorrtllm_backend repository gates renders (in-flight
        batching in TensorRT-LLM's own executor); this Python runtime serves drift scoring only."""
        return None
