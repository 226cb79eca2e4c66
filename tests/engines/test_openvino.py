"""The openvino engine: builds both arms from one checkpoint, refuses a build that does not
reproduce its model, and batches concurrent requests through OpenVINO GenAI's
ContinuousBatchingPipeline with the same greedy answers as one at a time."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gates.artifacts import ArtifactStore, EngineBuild, ModelRef, tree_digest
from gates.config import load_pipeline
from gates.config.engine import EngineSection
from gates.engines import ENGINES, engine_for, load_runner
from gates.engines import openvino_export as export
from gates.engines.base import identify
from gates.engines.batching import Job, SchedulerThread
from gates.errors import BadInputError, ConfigError
from gates.models.tiny import ensure_tiny_llama
from gates.testing.checkpoints import build_checkpoint

pytest.importorskip("openvino_genai", reason="openvino-genai is not installed (make install)")
pytest.importorskip("nncf", reason="nncf is not installed (make install)")

CFG = EngineSection(backend="openvino", precision="int8", accuracy_level=4)
PROMPTS = (
    "Four score and seven years ago",
    "The people shall not perish",
    "It was the best of times",
    "Once upon a time there",
    "We hold these truths",
    "In the beginning",
    "Call me",
    "A long time ago, in a galaxy far",
)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[ArtifactStore, Path, dict[str, EngineBuild]]:
    root = tmp_path_factory.mktemp("openvino")
    base = ensure_tiny_llama(root)
    store = ArtifactStore(root)
    builds = {
        role: ENGINES["openvino"].build(store, ModelRef(role, base, tree_digest(base), "none", "real"), CFG)
        for role in ("baseline", "candidate")
    }
    return store, base, builds


def test_both_arms_are_built_from_the_same_checkpoint(
    built: tuple[ArtifactStore, Path, dict[str, EngineBuild]],
) -> None:
    store, base, builds = built
    baseline, candidate = builds["baseline"], builds["candidate"]
    assert baseline.latency_representative and candidate.latency_representative
    assert "fp32" in baseline.latency_note and "int8 per channel" in candidate.latency_note
    assert candidate.recipe.startswith("openvino-int8") and baseline.recipe == ""
    manifest = json.loads((baseline.serve_path / "manifest.json").read_text())
    assert manifest["measured"]["vs_hf"]["top1"] == 1.0  # the fp32 IR reproduces the Hugging Face model
    assert manifest["measured"]["vs_hf"]["kl"] < 1e-6
    spec = json.loads((candidate.serve_path / "engine.json").read_text())
    assert spec["precision"] == "int8" and spec["compression"]["mode"] == "int8_asym"
    assert spec["dynamic_quantization_group_size"] == 32
    # compressed: the candidate's weights are smaller than the baseline's
    size = {arm: (b.serve_path / "openvino_model.bin").stat().st_size for arm, b in builds.items()}
    assert size["candidate"] < 0.5 * size["baseline"]
    again = ENGINES["openvino"].build(store, ModelRef("candidate", base, tree_digest(base), "none", "real"), CFG)
    assert again.reused and again.digest == candidate.digest
    first, second = (identify(builds[arm]) for arm in ("baseline", "candidate"))
    assert first.model.digest == second.model.digest and first.build_digest != second.build_digest
    assert candidate.quantization["format"] == "int8_wo" and baseline.quantization == {}


def test_runner_generates_and_scores_what_the_hf_model_does(
    built: tuple[ArtifactStore, Path, dict[str, EngineBuild]],
) -> None:
    from gates.engines.torch_runner import TorchRunner

    _, base, builds = built
    runner = load_runner(builds["baseline"].serve_path, 1)
    hf = TorchRunner(base, 1)
    ids = hf.encode(PROMPTS[0])
    assert runner.encode(PROMPTS[0]) == ids
    assert type(runner.tokenizer).__name__ == "_TokenizersEncoder"  # checked equal at build: no transformers
    assert runner.stop_ids == hf.stop_ids  # the tokenizer's and the model's generation config's
    hf_tokens, hf_lp = hf.generate(ids, 8)
    tokens, lp = runner.generate(ids, 8)
    assert tokens == hf_tokens and list(runner.stream(ids, 8)) == hf_tokens
    np.testing.assert_allclose(lp, hf_lp, atol=1e-3)
    np.testing.assert_allclose(runner.score(ids, hf_tokens), hf.score(ids, hf_tokens), atol=1e-3)
    for seed in (1, 2):  # the shared sampler: one seed, one answer, whatever the engine
        assert (
            runner.generate(ids, 8, temperature=0.9, seed=seed)[0] == hf.generate(ids, 8, temperature=0.9, seed=seed)[0]
        )


def test_scoring_is_the_generation_path_on_the_compressed_build(
    built: tuple[ArtifactStore, Path, dict[str, EngineBuild]],
) -> None:
    runner = load_runner(built[2]["candidate"].serve_path, 1)
    ids = runner.encode(PROMPTS[1])
    tokens, rows = runner.generate(ids, 8)
    np.testing.assert_allclose(runner.score(ids, tokens), rows, atol=1e-6, rtol=0)


class _Collect:
    """A job's tokens and outcome; optionally cancelled by its client after ``cancel_after`` tokens."""

    def __init__(self, done: threading.Semaphore, cancel_after: int | None = None) -> None:
        self.tokens: list[int] = []
        self.error: str | None = "never finished"
        self.done = done
        self.cancel_after = cancel_after

    def job(self, ids: list[int], max_new: int) -> Job:
        return Job(ids, max_new, self.tokens.append, self.finish, self.cancelled)

    def finish(self, error: str | None) -> None:
        self.error = error
        self.done.release()

    def cancelled(self) -> bool:
        return self.cancel_after is not None and len(self.tokens) >= self.cancel_after


def _run_batch(scheduler: Any, jobs: list[tuple[list[int], int, _Collect]], done: threading.Semaphore) -> None:
    for ids, max_new, collect in jobs:
        scheduler.submit(collect.job(ids, max_new))
    for _ in jobs:
        assert done.acquire(timeout=120), "a request never finished"


@pytest.mark.parametrize("arm", ["baseline", "candidate"])
def test_concurrent_requests_share_steps_and_answer_as_one_at_a_time(
    built: tuple[ArtifactStore, Path, dict[str, EngineBuild]], arm: str
) -> None:
    runner = load_runner(built[2][arm].serve_path, 1)
    alone = {p: runner.generate(runner.encode(p), 16)[0] for p in PROMPTS}
    scheduler = runner.batching(8, kv_cache_gb=1)
    assert isinstance(scheduler, SchedulerThread) and scheduler.max_batch == 8
    try:
        done = threading.Semaphore(0)
        collected = {p: _Collect(done) for p in PROMPTS}
        _run_batch(scheduler, [(runner.encode(p), 16, collected[p]) for p in PROMPTS], done)
        stats = scheduler.stats()
    finally:
        scheduler.close()
    for prompt in PROMPTS:
        assert collected[prompt].error is None, prompt
        assert collected[prompt].tokens == alone[prompt], prompt
    assert stats.batch_size_max is not None and stats.batch_size_max >= 4
    assert stats.tokens == sum(len(t) for t in alone.values())


def test_a_failed_or_cancelled_request_fails_alone(built: tuple[ArtifactStore, Path, dict[str, EngineBuild]]) -> None:
    runner = load_runner(built[2]["baseline"].serve_path, 1)
    scheduler = runner.batching(0)
    try:
        done = threading.Semaphore(0)
        good = {p: _Collect(done) for p in PROMPTS[:6]}
        cancelled = _Collect(done, cancel_after=3)
        too_long = _Collect(done)
        jobs = [(runner.encode(p), 16, good[p]) for p in PROMPTS[:3]]
        jobs += [(runner.encode(PROMPTS[6]), 16, cancelled), ([5] * runner.max_len, 4, too_long)]
        jobs += [(runner.encode(p), 16, good[p]) for p in PROMPTS[3:6]]
        _run_batch(scheduler, jobs, done)
        assert scheduler.failure() is None  # the scheduler still serves
        assert scheduler.max_batch == 256  # 0: the pipeline's own default
        after = _Collect(done)
        _run_batch(scheduler, [(runner.encode(PROMPTS[7]), 8, after)], done)
    finally:
        scheduler.close()
    assert cancelled.error == "cancelled by the client" and 3 <= len(cancelled.tokens) < 16
    assert too_long.error is not None and "exceed the context" in too_long.error and not too_long.tokens
    for prompt, collect in good.items():
        assert collect.error is None and collect.tokens == runner.generate(runner.encode(prompt), 16)[0], prompt
    assert after.error is None and after.tokens == runner.generate(runner.encode(PROMPTS[7]), 8)[0]


def test_int4_groups_follow_block_size(tmp_path: Path) -> None:
    base = ensure_tiny_llama(tmp_path)
    cfg = EngineSection(backend="openvino", precision="int4", block_size=16, accuracy_level=1)
    build = ENGINES["openvino"].build(
        ArtifactStore(tmp_path), ModelRef("candidate", base, tree_digest(base), "none", "real"), cfg
    )
    spec = json.loads((build.serve_path / "engine.json").read_text())
    assert spec["compression"] == {"mode": "int4_sym", "group_size": 16, "ratio": 1.0, "backup": "int8_asym"}
    assert spec["dynamic_quantization_group_size"] == 0  # accuracy_level 1: fp32 activations
    assert "int4 groups of 16, fp32 compute" in build.latency_note
    runner = load_runner(build.serve_path, 1)
    tokens, rows = runner.generate(runner.encode(PROMPTS[0]), 4)
    assert len(tokens) == 4 and rows.shape == (4, 384)


def test_a_build_that_does_not_reproduce_its_model_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fault injection: the export reads another checkpoint than the one the engine claims."""
    base = build_checkpoint("llama", tmp_path / "base", steps=30, seed=1)
    other = build_checkpoint("llama", tmp_path / "other", steps=30, seed=7)
    real = export.export_stateful
    monkeypatch.setattr(export, "export_stateful", lambda hf_dir: real(other))
    with pytest.raises(BadInputError, match=r"does not reproduce the Hugging Face model: top-1 agreement 0\.\d+"):
        ENGINES["openvino"].build(
            ArtifactStore(tmp_path / "s"), ModelRef("baseline", base, tree_digest(base), "none", "real"), CFG
        )
    assert not list((tmp_path / "s" / "store").rglob("engine.json")), "nothing refused is left in the store"


@pytest.mark.parametrize(
    ("engine", "match"),
    [
        (
            "{backend: openvino}\noptimize:\n  quantize: {format: int8_wo, calibration: c.jsonl}",
            "compresses the candidate's weights with NNCF",
        ),
        ("{backend: openvino, accuracy_level: 2}", "engine.accuracy_level: .*fp32 \\(accuracy_level 1\\) or with int8"),
        (
            "{backend: openvino, algo: k_quant}",
            "engine.algo is an option of onnxruntime-genai, not of engine 'openvino'",
        ),
    ],
)
def test_config_refuses_what_this_engine_does_not_run(tmp_path: Path, engine: str, match: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        f"name: p\nmodel: {{source: builtin:tiny-llama}}\nengine: {engine}\ngolden: {{suites: [g.jsonl]}}\n"
    )
    with pytest.raises(ConfigError, match=match):
        engine_for(load_pipeline(path))


def _stream(url: str, model: str, prompt: str, max_new: int) -> tuple[list[int], str | None]:
    """One streamed request on its own gRPC stream: its tokens, and the error that ended it (None: none)."""
    import queue

    import tritonclient.grpc as grpcclient

    from gates.triton.client import build_inputs

    answers: queue.Queue[tuple[Any, Any]] = queue.Queue()
    client = grpcclient.InferenceServerClient(url=url)
    stream = grpcclient.InferInput("STREAM", [1], "BOOL")
    stream.set_data_from_numpy(np.array([True]))
    tokens: list[int] = []
    error: str | None = None
    try:
        client.start_stream(callback=lambda result, error: answers.put((result, error)))
        client.async_stream_infer(model, [*build_inputs(prompt, max_new), stream], enable_empty_final_response=True)
        while True:
            result, err = answers.get(timeout=120)
            if err is not None:
                error = str(err)
                break
            ids = result.as_numpy("TOKEN_IDS")
            tokens += [] if ids is None else [int(t) for t in ids.reshape(-1)]
            if result.get_response().parameters["triton_final_response"].bool_param:
                break
    finally:
        client.stop_stream()
        client.close()
    return tokens, error


@pytest.mark.integration
def test_served_model_batches_concurrent_streams_through_tritonserver(
    built: tuple[ArtifactStore, Path, dict[str, EngineBuild]], tmp_path: Path, no_leaked_servers: None
) -> None:
    """Issue 25's acceptance on the openvino engine: 8 concurrent streamed requests to one served
    model share engine steps (batch ≥ 4 in the model's metrics), each answer equals the one-at-a-time
    answer, and a request that fails (a prompt longer than the context) fails alone."""
    import re

    from gates.config.engine import ServeSection
    from gates.triton.repository import serving, set_parameters
    from gates.triton.server import TritonServer

    build = built[2]["candidate"]
    repo = tmp_path / "models"
    model_dir = ENGINES["openvino"].write_serving(repo, "candidate", build, 1)
    set_parameters(model_dir, serving(ServeSection(max_batch=8, kv_cache_gb=1)))
    assert 'key: "kv_cache_gb" value: { string_value: "1.0" }' in (model_dir / "config.pbtxt").read_text()
    runner = load_runner(build.serve_path, 1)
    alone = {p: runner.generate(runner.encode(p), 24)[0] for p in PROMPTS}
    results: dict[str, tuple[list[int], str | None]] = {}
    too_long = " ".join(["the king"] * 300)
    with TritonServer(repo, tmp_path) as server:
        server.load_model("candidate")

        def ask(prompt: str) -> None:
            try:
                results[prompt] = _stream(server.grpc_url, "candidate", prompt, 24)
            except Exception as exc:  # recorded, so the assertion below names it
                results[prompt] = ([], f"client: {type(exc).__name__}: {exc}")

        threads = [threading.Thread(target=ask, args=(p,)) for p in (*PROMPTS, too_long)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        metrics = server.metrics()
    steps = {
        int(m.group(1)): float(m.group(2))
        for m in re.finditer(r'gates_engine_steps_total\{[^}]*batch="(\d+)"[^}]*\} ([0-9.e+]+)', metrics)
    }
    assert max(steps) >= 4, steps
    assert re.search(r'gates_engine_max_batch\{[^}]*model="candidate"[^}]*\} 8\b', metrics), metrics
    for prompt in PROMPTS:
        assert results[prompt] == (alone[prompt], None), prompt
    tokens, error = results[too_long]
    assert not tokens and error is not None and "exceed the context" in error


def test_int4_groups_that_do_not_divide_a_matmul_are_bad_input_naming_the_key() -> None:
    """NNCF refuses groups that do not divide a MatMul's input size (128 on SmolLM2's 576): exit 2
    naming engine.block_size and the sizes, not an internal error (seen in the SmolLM2 search)."""
    import openvino as ov
    import openvino.opset13 as ops

    rng = np.random.default_rng(0)
    x = ops.parameter([1, 24], np.float32, name="x")
    h = ops.matmul(x, ops.constant(rng.random((24, 24), dtype=np.float32)), False, True)
    h = ops.matmul(h, ops.constant(rng.random((24, 24), dtype=np.float32)), False, True)
    out = ops.matmul(h, ops.constant(rng.random((8, 24), dtype=np.float32)), False, True)
    with pytest.raises(BadInputError, match=r"engine\.block_size 16 .*24") as err:
        export.compress(ov.Model([out], [x], "t"), "int4", 16)
    assert err.value.exit_code == 2
