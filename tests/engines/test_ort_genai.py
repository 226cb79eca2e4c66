"""The onnxruntime-genai engine: builds both arms, refuses a build that does not reproduce its model,
and serves through the real tritonserver exactly what runs in process."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gates.artifacts import ArtifactStore, ModelRef, tree_digest
from gates.config import load_pipeline
from gates.config.engine import EngineSection
from gates.engines import ENGINES, engine_for, load_runner
from gates.engines import ort_genai as ort
from gates.engines.base import identify
from gates.errors import BadInputError, ConfigError
from gates.models.tiny import ensure_tiny_llama
from gates.testing.checkpoints import build_checkpoint
from gates.triton.client import TextModelClient
from gates.triton.server import TritonServer

pytest.importorskip("onnxruntime_genai", reason="onnxruntime-genai is not installed (make install)")

CFG = EngineSection(backend="onnxruntime-genai", precision="int8", accuracy_level=4)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[ArtifactStore, Path, dict[str, object]]:
    root = tmp_path_factory.mktemp("ort")
    base = ensure_tiny_llama(root)
    store = ArtifactStore(root)
    builds = {
        role: ENGINES["onnxruntime-genai"].build(store, ModelRef(role, base, tree_digest(base), "none", "real"), CFG)
        for role in ("baseline", "candidate")
    }
    return store, base, builds  # type: ignore[return-value]


def test_both_arms_are_built_by_the_same_engine(built: tuple[ArtifactStore, Path, dict[str, object]]) -> None:
    store, base, builds = built
    baseline, candidate = builds["baseline"], builds["candidate"]
    assert baseline.latency_representative and candidate.latency_representative  # type: ignore[attr-defined]
    assert "fp32" in baseline.latency_note and "MatMulNBits int8" in candidate.latency_note  # type: ignore[attr-defined]
    assert candidate.recipe.startswith("ort-int8") and baseline.recipe == ""  # type: ignore[attr-defined]
    manifest = (baseline.serve_path / "manifest.json").read_text()  # type: ignore[attr-defined]
    assert '"top1": 1.0' in manifest  # the fp32 build reproduces the Hugging Face model exactly
    again = ENGINES["onnxruntime-genai"].build(
        store, ModelRef("candidate", base, tree_digest(base), "none", "real"), CFG
    )
    assert again.reused and again.digest == candidate.digest  # type: ignore[attr-defined]


def test_runner_generates_what_the_hf_model_generates(built: tuple[ArtifactStore, Path, dict[str, object]]) -> None:
    from gates.engines.torch_runner import TorchRunner

    _, base, builds = built
    ort_runner = load_runner(builds["baseline"].serve_path, 1)  # type: ignore[attr-defined]
    hf = TorchRunner(base, 1)
    ids = hf.encode("Four score and seven years ago")
    assert ort_runner.encode("Four score and seven years ago") == ids
    # the build verified that `tokenizers` alone encodes as transformers does: the served runner
    # uses it (no transformers import in the Triton stub) with the same stop ids
    spec = json.loads((builds["baseline"].serve_path / "engine.json").read_text())  # type: ignore[attr-defined]
    assert spec["tokenizer"]["library"] == "tokenizers"
    assert type(ort_runner.tokenizer).__name__ == "_TokenizersEncoder"
    assert ort_runner.stop_ids == ort.OrtRunner(builds["baseline"].serve_path, 1, tokenizer=hf.tokenizer).stop_ids  # type: ignore[attr-defined]
    hf_tokens, hf_lp = hf.generate(ids, 8)
    ort_tokens, ort_lp = ort_runner.generate(ids, 8)
    assert ort_tokens == hf_tokens and list(ort_runner.stream(ids, 8)) == hf_tokens
    np.testing.assert_allclose(ort_lp, hf_lp, atol=2e-3)
    np.testing.assert_allclose(ort_runner.score(ids, hf_tokens), hf.score(ids, hf_tokens), atol=2e-3)


def test_a_build_that_does_not_reproduce_its_model_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fault injection: the builder reads another checkpoint than the one the engine claims."""
    base = build_checkpoint("llama", tmp_path / "base", steps=30, seed=1)
    other = build_checkpoint("llama", tmp_path / "other", steps=30, seed=7)
    real = ort.run_builder
    monkeypatch.setattr(ort, "run_builder", lambda hf, out, p, o: real(other, out, p, o))
    with pytest.raises(BadInputError, match=r"does not reproduce the Hugging Face model: top-1 agreement 0\.\d+"):
        ENGINES["onnxruntime-genai"].build(
            ArtifactStore(tmp_path / "s"), ModelRef("baseline", base, tree_digest(base), "none", "real"), CFG
        )
    assert not list((tmp_path / "s" / "store").rglob("engine.json")), "nothing refused is left in the store"


def test_config_refuses_model_optimizer_quantization_with_this_engine(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "name: p\nmodel: {source: builtin:tiny-llama}\noptimize:\n  quantize: {format: int8_wo, calibration: c.jsonl}\n"
        "engine: {backend: onnxruntime-genai}\ngolden: {suites: [g.jsonl]}\n"
    )
    with pytest.raises(
        ConfigError, match=r"p.yaml:4: at key optimize.quantize.format: .*quantizes the candidate with its own builder"
    ):
        engine_for(load_pipeline(path))


@pytest.mark.integration
def test_served_through_tritonserver_equals_in_process(
    built: tuple[ArtifactStore, Path, dict[str, object]], tmp_path: Path, no_leaked_servers: None
) -> None:
    _, _, builds = built
    engine = ENGINES["onnxruntime-genai"]
    repo = tmp_path / "models"
    for name in ("baseline", "candidate"):
        engine.write_serving(repo, name, builds[name], 1)  # type: ignore[arg-type]
    prompt = "Four score and seven years ago"
    with TritonServer(repo, tmp_path) as server:
        for name in ("baseline", "candidate"):
            server.load_model(name)
        client = TextModelClient(server.grpc_url)
        served = {name: client.generate(name, prompt, 8, top_k=4) for name in ("baseline", "candidate")}
        client.close()
    for name in ("baseline", "candidate"):
        runner = load_runner(builds[name].serve_path, 1)  # type: ignore[attr-defined]
        tokens, logprobs = runner.generate(runner.encode(prompt), 8)
        assert list(served[name].token_ids) == tokens, name
        np.testing.assert_allclose(served[name].top_logprobs[:, 0], logprobs.max(-1), atol=1e-4, err_msg=name)


def test_ort_runner_samples_like_the_torch_runner(built: tuple[ArtifactStore, Path, dict[str, object]]) -> None:
    """Both engines draw with the shared sampler: one seed gives the same answer on the same model."""
    from gates.engines.torch_runner import TorchRunner

    _, base, builds = built
    ort_runner = load_runner(builds["baseline"].serve_path, 1)  # type: ignore[attr-defined]
    hf = TorchRunner(base, 1)
    ids = hf.encode("Four score and seven years ago")
    for seed in (1, 2, 3):
        tokens, lp = ort_runner.generate(ids, 8, temperature=0.9, seed=seed)
        assert tokens == hf.generate(ids, 8, temperature=0.9, seed=seed)[0], seed
        assert list(ort_runner.stream(ids, 8, temperature=0.9, seed=seed)) == tokens
        np.testing.assert_allclose(lp, ort_runner.score(ids, tokens), atol=1e-4)
    assert ort_runner.generate(ids, 8)[0] == hf.generate(ids, 8)[0]  # greedy as before


def test_each_arm_is_identified_by_the_build_it_serves(built: tuple[ArtifactStore, Path, dict[str, object]]) -> None:
    """Issue 24: both arms come from one checkpoint (one model digest); what is served differs."""
    _, base, builds = built
    baseline, candidate = (identify(builds[arm]) for arm in ("baseline", "candidate"))  # type: ignore[arg-type]
    assert baseline.model.digest == candidate.model.digest == tree_digest(base)
    assert candidate.build_digest == tree_digest(candidate.serve_path) != baseline.build_digest
    assert baseline.build_digest == tree_digest(baseline.serve_path) != baseline.model.digest
    assert candidate.quantization == {
        "format": "int8_wo",
        "by": "onnxruntime-genai builder",
        "block_size": 32,
        "accuracy_level": 4,
        "compute": "int8",
        "algo": "default",
    }
    assert baseline.quantization == {}  # the fp32 build quantizes nothing


def test_scoring_is_the_generation_path_on_the_low_bit_build(
    built: tuple[ArtifactStore, Path, dict[str, object]],
) -> None:
    """Issue 24: on the int8 build a context read in one pass and token by token give different
    next-token distributions; gates teacher-forces token by token, as the engine generates, so a
    forced continuation is scored exactly as its generation computed it."""
    _, _, builds = built
    runner = load_runner(builds["candidate"].serve_path, 1)  # type: ignore[attr-defined]
    for prompt in ("Four score and seven years ago", "The people shall not perish"):
        ids = runner.encode(prompt)
        tokens, rows = runner.generate(ids, 8)
        np.testing.assert_allclose(runner.score(ids, tokens), rows, atol=1e-6, rtol=0)
        # and a longer forced continuation: each row is the step that generation would take there
        rows_again = runner.score(ids, tokens[:4])
        np.testing.assert_allclose(rows_again, rows[:4], atol=1e-6, rtol=0)


def test_one_pass_scoring_is_the_prefill_path(built: tuple[ArtifactStore, Path, dict[str, object]]) -> None:
    """Issue 29: ``score_prefill`` reads prompt and continuation in one pass. On the fp32 build it
    equals token-by-token scoring; on the int8 build the prefill kernels give other rows, which is
    why the drift corpus reports which path each figure measures."""
    _, _, builds = built
    fp32 = load_runner(builds["baseline"].serve_path, 1)  # type: ignore[attr-defined]
    int8 = load_runner(builds["candidate"].serve_path, 1)  # type: ignore[attr-defined]
    ids = fp32.encode("Four score and seven years ago our fathers brought forth on this continent")
    prompt, forced = ids[:1], ids[1:]
    one = fp32.score_prefill(prompt, forced)  # type: ignore[attr-defined]
    assert one.shape == (len(forced), one.shape[1])
    np.testing.assert_allclose(one, fp32.score(prompt, forced), atol=2e-4)
    np.testing.assert_allclose(np.exp(one).sum(axis=1), 1.0, atol=1e-4)
    low = int8.score_prefill(prompt, forced)  # type: ignore[attr-defined]
    assert low.shape == one.shape and np.abs(low - int8.score(prompt, forced)).max() > 1e-6
    with pytest.raises(ValueError, match="at least one token"):
        fp32.score_prefill([], forced)  # type: ignore[attr-defined]


@pytest.mark.integration
def test_served_prefill_scoring_equals_in_process(
    built: tuple[ArtifactStore, Path, dict[str, object]], tmp_path: Path, no_leaked_servers: None
) -> None:
    """PROMPT_IDS + PREFILL through tritonserver: the rows of ``score_prefill``, top-k by partial sort."""
    _, _, builds = built
    engine = ENGINES["onnxruntime-genai"]
    repo = tmp_path / "models"
    engine.write_serving(repo, "candidate", builds["candidate"], 1)  # type: ignore[arg-type]
    runner = load_runner(builds["candidate"].serve_path, 1)  # type: ignore[attr-defined]
    ids = runner.encode("Four score and seven years ago our fathers brought forth")
    forced = np.asarray(ids[1:], dtype=np.int64)
    with TritonServer(repo, tmp_path) as server:
        server.load_model("candidate")
        client = TextModelClient(server.grpc_url)
        got = client.generate(
            "candidate",
            "",
            1,
            top_k=5,
            forced_ids=forced,
            logprob_ids=forced.reshape(-1, 1),
            prompt_ids=np.asarray(ids[:1]),
            prefill=True,
        )
        client.close()
    rows = runner.score_prefill(ids[:1], list(forced))  # type: ignore[attr-defined]
    np.testing.assert_allclose(got.selected_logprobs[:, 0], rows[np.arange(forced.size), forced], atol=1e-5)
    np.testing.assert_allclose(got.top_logprobs, -np.sort(-rows, axis=1)[:, :5], atol=1e-5)
    assert (got.top_ids[:, 0] == rows.argmax(axis=1)).all()
