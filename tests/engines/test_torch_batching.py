"""The PyTorch engines' batching: transformers' continuous batching behind gates' BatchScheduler.

Every answer is compared with the same runner's one-at-a-time greedy answer (``TorchRunner.stream``):
on these models batching leaves the arithmetic of each sequence's top-1 unchanged, so the tokens
must be equal, not merely close.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from gates.artifacts import ArtifactStore, ModelRef, tree_digest
from gates.config.engine import EngineSection
from gates.engines import ENGINES, load_runner
from gates.engines.batching import Job
from gates.engines.fp8_kernels import Fp8Linear, extract_fp8_layers, save_fp8_layers
from gates.engines.int8_kernels import Int8Linear
from gates.engines.torch_batching import CANCELLED, TorchBatchScheduler, kv_cache_blocks
from gates.engines.torch_runner import TorchRunner
from gates.models.loader import ENGINE_JSON, load_model

REPO = Path(__file__).resolve().parents[2]
PROMPTS = [
    "Shall I compare thee to a summer's day?",
    "The quick brown fox",
    "To be, or not to be, that is the question:",
    "Once upon a time",
    "It was the best of times, it was the worst of times,",
    "Call me Ishmael.",
    "In the beginning",
    "All happy families are alike;",
]
MAX_NEW = 16
WAIT_S = 120.0


class Answer:
    """One job's tokens and outcome, with a way to cancel it from its own token callback."""

    def __init__(self, ids: list[int], max_new: int = MAX_NEW, cancel_after: int | None = None) -> None:
        self.tokens: list[int] = []
        self.error: str | None = None
        self.done = threading.Event()
        self.cancel_after = cancel_after
        self.on_finish: Callable[[], None] | None = None
        self.job = Job(ids, max_new, self.tokens.append, self._finish, self._cancelled)

    def _finish(self, error: str | None) -> None:
        self.error = error
        if self.on_finish is not None:
            self.on_finish()
        self.done.set()

    def _cancelled(self) -> bool:
        return self.cancel_after is not None and len(self.tokens) >= self.cancel_after

    def wait(self) -> None:
        assert self.done.wait(WAIT_S), "the scheduler never finished this request"


def _run(scheduler: Any, answers: list[Answer]) -> None:
    for a in answers:
        scheduler.submit(a.job)
    for a in answers:
        a.wait()


@pytest.fixture(scope="module")
def runner(tiny_model: Path) -> TorchRunner:
    return TorchRunner(tiny_model, 1)


@pytest.fixture(scope="module")
def one_at_a_time(runner: TorchRunner) -> list[list[int]]:
    return [list(runner.stream(runner.encode(p), MAX_NEW)) for p in PROMPTS]


def _check_batched(runner: TorchRunner, reference: list[list[int]]) -> None:
    """8 concurrent jobs share steps and each gets its one-at-a-time greedy answer."""
    steps: list[tuple[int, float]] = []
    scheduler = runner.batching(8, lambda n, s: steps.append((n, s)))
    # (tokens the steps reported, tokens delivered) as each job finishes: a client that has its
    # whole answer must find every token of it in the step metrics (Triton's endpoint is scraped
    # right after the streams end: a served test once read 506 step tokens of 512)
    at_finish: list[tuple[int, int]] = []
    try:
        answers = [Answer(runner.encode(p)) for p in PROMPTS]
        for a in answers:
            a.on_finish = lambda: at_finish.append((sum(n for n, _ in steps), sum(len(x.tokens) for x in answers)))
        _run(scheduler, answers)
        stats = scheduler.stats()
    finally:
        scheduler.close()
    assert [a.error for a in answers] == [None] * len(PROMPTS)
    assert [a.tokens for a in answers] == reference
    assert stats.batch_size_max is not None and stats.batch_size_max >= 4, stats.steps_by_size
    assert stats.tokens == sum(len(t) for t in reference) == sum(n for n, _ in steps)
    assert stats.steps == len(steps) and stats.busy_s > 0
    assert all(counted >= delivered for counted, delivered in at_finish), at_finish


def test_concurrent_jobs_share_steps_and_get_their_one_at_a_time_answers(
    runner: TorchRunner, one_at_a_time: list[list[int]]
) -> None:
    _check_batched(runner, one_at_a_time)


def test_the_runner_keeps_causal_attention_while_the_manager_runs(runner: TorchRunner) -> None:
    """The manager switches its model to paged attention; the runner's scoring must not see that."""
    ids = runner.encode(PROMPTS[0])
    before = runner.score(ids, ids[:6])
    scheduler = runner.batching(4)
    try:
        assert scheduler.model.config._attn_implementation.startswith("paged|")
        assert runner.model.config._attn_implementation == "sdpa"
        assert scheduler.model.model.embed_tokens.weight is runner.model.model.embed_tokens.weight  # no copy
        assert torch.equal(torch.from_numpy(runner.score(ids, ids[:6])), torch.from_numpy(before))
    finally:
        scheduler.close()
    assert not scheduler.manager.is_running()


def test_a_cancelled_job_fails_alone(runner: TorchRunner, one_at_a_time: list[list[int]]) -> None:
    scheduler = runner.batching(8)
    try:
        answers = [Answer(runner.encode(p), cancel_after=3 if k == 2 else None) for k, p in enumerate(PROMPTS)]
        _run(scheduler, answers)
        assert scheduler.failure() is None
    finally:
        scheduler.close()
    cancelled = answers[2]
    assert cancelled.error == CANCELLED
    assert 3 <= len(cancelled.tokens) < MAX_NEW and cancelled.tokens == one_at_a_time[2][: len(cancelled.tokens)]
    others = [k for k in range(len(PROMPTS)) if k != 2]
    assert [answers[k].error for k in others] == [None] * len(others)
    assert [answers[k].tokens for k in others] == [one_at_a_time[k] for k in others]


def test_a_request_that_cannot_fit_fails_alone(runner: TorchRunner, one_at_a_time: list[list[int]]) -> None:
    scheduler = runner.batching(4)
    try:
        too_long = Answer(runner.encode(PROMPTS[1]), max_new=runner.max_len)
        answers = [Answer(runner.encode(PROMPTS[0])), too_long, Answer(runner.encode(PROMPTS[3]))]
        _run(scheduler, answers)
    finally:
        scheduler.close()
    assert too_long.error is not None and "do not fit the context" in too_long.error and not too_long.tokens
    assert (answers[0].error, answers[2].error) == (None, None)
    assert (answers[0].tokens, answers[2].tokens) == (one_at_a_time[0], one_at_a_time[3])


def test_a_dead_manager_fails_every_request_with_the_reason(runner: TorchRunner) -> None:
    scheduler = runner.batching(4)
    armed = threading.Event()

    def fault(module: Any, args: Any, kwargs: Any) -> None:
        if armed.is_set():
            raise RuntimeError("injected fault in the forward pass")

    scheduler.model.register_forward_pre_hook(fault, with_kwargs=True)
    try:
        armed.set()
        answers = [Answer(runner.encode(p)) for p in PROMPTS[:3]]
        _run(scheduler, answers)
        for a in answers:
            assert a.error is not None and "injected fault in the forward pass" in a.error, a.error
        failure = scheduler.failure()
        assert failure is not None and "died" in failure and "injected fault" in failure
        later = Answer(runner.encode(PROMPTS[4]))
        scheduler.submit(later.job)
        later.wait()
        assert later.error == failure and not later.tokens
    finally:
        scheduler.close()
    # the runner itself is untouched: its one-at-a-time path still answers
    assert len(list(runner.stream(runner.encode(PROMPTS[0]), 2))) == 2


def test_int8_engine_batches_its_integer_layers(int8_candidate: tuple[Path, Any], tmp_path: Path) -> None:
    """torch-int8: the Int8Linear layers (static per-tensor input scale, so rows are independent) run
    under paged attention with the packed batch."""
    path, _ = int8_candidate
    ref = ModelRef("candidate", path, tree_digest(path), "int8_sq", "simulated")
    build = ENGINES["torch-int8"].build(ArtifactStore(tmp_path), ref, EngineSection(backend="torch-int8"))
    runner = load_runner(build.serve_path, 1)
    assert isinstance(runner, TorchRunner) and any(isinstance(m, Int8Linear) for m in runner.model.modules())
    reference = [list(runner.stream(runner.encode(p), MAX_NEW)) for p in PROMPTS]
    _check_batched(runner, reference)


def test_fp8_layers_batch_where_their_kernel_runs(tmp_path: Path, tiny_model: Path) -> None:
    """torch-fp8's Fp8Linear under paged attention. The engine builds only for CUDA (FP8 tensor cores);
    torch's CPU ``_scaled_mm`` runs the same layers, so the batching path is checked here on CPU."""
    from gates.config.schema import QuantizeSection
    from gates.optimize.quantize import calibration_batches, quantize, save_quantized
    from gates.quality.golden import load_calibration

    model, tok = load_model(tiny_model)
    texts = load_calibration(REPO / "golden_prompts" / "calibration.jsonl")[:8]
    section = QuantizeSection(format="fp8", calibration="golden_prompts/calibration.jsonl", samples=8)
    model = quantize(model, section, calibration_batches(tok, texts, 4, 32))
    artifact, engine = tmp_path / "fp8", tmp_path / "engine"
    save_quantized(model, tok, artifact)
    engine.mkdir()
    loaded, _ = load_model(artifact)
    save_fp8_layers(extract_fp8_layers(loaded), engine)
    spec = {"backend": "torch-fp8", "model_path": str(artifact), "device": "cpu", "dtype": "fp32"}
    (engine / ENGINE_JSON).write_text(json.dumps(spec))
    runner = TorchRunner(engine, 1)
    assert sum(isinstance(m, Fp8Linear) for m in runner.model.modules()) == 14
    reference = [list(runner.stream(runner.encode(p), MAX_NEW)) for p in PROMPTS]
    _check_batched(runner, reference)


def test_kv_cache_holds_max_batch_sequences_above_the_safety_margin() -> None:
    class Config:
        num_hidden_layers, num_key_value_heads, num_attention_heads, hidden_size = 2, 4, 4, 128

    # 16 sequences of min(256, 2048) tokens = 16 blocks of 256, over 85% of the cache (+1)
    assert kv_cache_blocks(Config(), 4, 256, 16, None, 256) == 20
    # a long context is reserved 2048 tokens a sequence (8 blocks)
    assert kv_cache_blocks(Config(), 4, 8192, 4, None, 256) == 39
    # a byte budget: 2 * 2 layers * 4 heads * 32 dims * 4 bytes = 2 KiB a token, 512 KiB a block
    assert kv_cache_blocks(Config(), 4, 256, 16, 0.25, 256) == 512
    # never less than one whole context
    assert kv_cache_blocks(Config(), 4, 8192, 1, 0.000001, 256) == 32


def test_scheduler_defaults_to_the_device_recommendation(runner: TorchRunner) -> None:
    scheduler: TorchBatchScheduler = runner.batching(0)
    try:
        assert scheduler.max_batch == 16
        assert scheduler.manager.continuous_batching_config.max_requests_per_batch == 16
    finally:
        scheduler.close()
