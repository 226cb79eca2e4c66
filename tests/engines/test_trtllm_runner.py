"""The TensorRT-LLM runner's adapter logic, driven by a stand-in for ``tensorrt_llm.runtime.ModelRunner``.

TensorRT-LLM cannot be installed on these machines (machine facts), so the runtime is replaced by
``LoopRuntime``: the tiny PyTorch model decoded the way TensorRT-LLM's Python runtime documents
it (``generate(batch_input_ids=[int32 tensor], max_new_tokens, end_id, pad_id, top_k=1,
streaming, return_dict, output_sequence_lengths, logits_processor)``; ``output_ids``
``[batch, beam, seq]`` holding the prompt, padded with ``end_id``; ``sequence_lengths``
``[batch, beam]``; the logits processor called once per step with ``[batch * beam, vocab]``
scores before the token is chosen). Run on the same model, the adapter must answer exactly what
the PyTorch runner answers: that is what makes drift between the two engines meaningful.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from gates.engines.torch_runner import TorchRunner
from gates.engines.trtllm_runner import TrtllmRunner
from gates.errors import CapabilityError
from gates.models.loader import load_model, stop_token_ids


class LoopRuntime:
    """A KV-cache-free greedy loop with TensorRT-LLM's runtime interface (what the adapter relies on)."""

    def __init__(self, engine_dir: str):
        self.model, _ = load_model(Path(engine_dir))
        self.max_seq_len = 128
        self.calls: list[dict[str, Any]] = []

    @classmethod
    def from_dir(cls, engine_dir: str, rank: int = 0) -> LoopRuntime:
        assert rank == 0
        return cls(engine_dir)

    def generate(self, batch_input_ids: list[torch.Tensor], **kw: Any) -> Any:
        self.calls.append(kw)
        assert kw["top_k"] == 1 and kw["return_dict"] and kw["output_sequence_lengths"]
        (prompt,) = batch_input_ids
        assert prompt.dtype == torch.int32
        steps = self._steps(prompt.tolist(), kw["max_new_tokens"], kw["end_id"], kw["logits_processor"])
        return steps if kw["streaming"] else list(steps)[-1]

    def _steps(self, ids: list[int], max_new: int, end_id: int, processor: Any) -> Iterator[dict[str, Any]]:
        seq = list(ids)
        for step in range(max_new):
            with torch.no_grad():
                scores = self.model(input_ids=torch.tensor([seq])).logits[:, -1]
            if processor is not None:
                scores = processor(step, torch.tensor([seq]), scores)
            seq.append(int(scores[0].argmax()))
            padded = seq + [end_id] * (len(ids) + max_new - len(seq))
            yield {"output_ids": torch.tensor([[padded]]), "sequence_lengths": torch.tensor([[len(seq)]])}
            if seq[-1] == end_id:
                return


@pytest.fixture(scope="module")
def engine_artifact(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An engine artifact as TensorRTLLMEngine.build lays it out (the 'engine' here is the checkpoint
    LoopRuntime runs)."""
    art = tmp_path_factory.mktemp("trtllm-art")
    shutil.copytree(tiny_model, art / "engine")
    model, tokenizer = load_model(tiny_model)
    tokenizer.save_pretrained(art / "tokenizer")
    spec = {"backend": "tensorrt-llm", "stop_ids": list(stop_token_ids(model, tokenizer))}
    (art / "engine.json").write_text(json.dumps(spec))
    return art


@pytest.fixture(scope="module")
def runners(engine_artifact: Path, tiny_model: Path) -> tuple[TrtllmRunner, TorchRunner]:
    return TrtllmRunner(engine_artifact, runner_class=LoopRuntime), TorchRunner(tiny_model, threads=1)


PROMPTS = ["The quick brown fox", "Once upon a time", "1 2 3 4"]


@pytest.mark.parametrize("prompt", PROMPTS)
def test_greedy_generate_matches_the_pytorch_runner(runners: tuple[TrtllmRunner, TorchRunner], prompt: str) -> None:
    trt, ref = runners
    ids = ref.encode(prompt)
    assert trt.encode(prompt) == ids and trt.stop_ids == ref.stop_ids
    tokens, logprobs = trt.generate(ids, 12)
    want_tokens, want_logprobs = ref.generate(ids, 12)
    assert tokens == want_tokens
    np.testing.assert_allclose(logprobs, want_logprobs, atol=1e-4)
    assert list(trt.stream(ids, 12)) == list(ref.stream(ids, 12))


@pytest.mark.parametrize("prompt", PROMPTS)
def test_forced_scoring_matches_the_pytorch_runner(runners: tuple[TrtllmRunner, TorchRunner], prompt: str) -> None:
    trt, ref = runners
    ids = ref.encode(prompt)
    # a continuation the model would not choose itself: forcing, not decoding, produced the rows
    continuation = [int(t) for t in np.random.default_rng(len(prompt)).integers(5, 60, size=7)]
    got = trt.score(ids, continuation)
    np.testing.assert_allclose(got, ref.score(ids, continuation), atol=1e-4)
    assert got.shape[0] == len(continuation)


def test_sampling_draws_what_the_pytorch_runner_draws(runners: tuple[TrtllmRunner, TorchRunner]) -> None:
    trt, ref = runners
    ids = ref.encode(PROMPTS[0])
    for seed in (0, 1, 2):
        tokens, logprobs = trt.generate(ids, 10, temperature=1.3, seed=seed)
        want_tokens, want_logprobs = ref.generate(ids, 10, temperature=1.3, seed=seed)
        assert tokens == want_tokens
        np.testing.assert_allclose(logprobs, want_logprobs, atol=1e-4)  # the model's own, not the forced ones
        assert list(trt.stream(ids, 10, temperature=1.3, seed=seed)) == want_tokens
    draws = {tuple(trt.generate(ids, 10, temperature=1.3, seed=s)[0]) for s in range(6)}
    assert len(draws) > 1  # the seed matters: it is sampling, not greedy decoding


def test_greedy_streaming_copies_nothing_per_token(runners: tuple[TrtllmRunner, TorchRunner]) -> None:
    trt, ref = runners
    list(trt.stream(ref.encode(PROMPTS[1]), 8))
    assert trt.runtime.calls[-1]["logits_processor"] is None and trt.runtime.calls[-1]["streaming"]


def test_scoring_that_stops_early_is_an_error_not_short_rows(runners: tuple[TrtllmRunner, TorchRunner]) -> None:
    trt, ref = runners
    stop = min(trt.stop_ids)
    with pytest.raises(RuntimeError, match="stopped after 1 of 3 forced tokens"):
        trt.score(ref.encode(PROMPTS[2]), [stop, 7, 8])


@pytest.mark.skipif(importlib.util.find_spec("tensorrt_llm") is not None, reason="TensorRT-LLM is installed here")
def test_without_tensorrt_llm_the_refusal_says_how_to_install(engine_artifact: Path) -> None:
    with pytest.raises(CapabilityError, match=r"not importable here.*pypi\.nvidia\.com"):
        TrtllmRunner(engine_artifact)
