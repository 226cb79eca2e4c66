from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from gates.config.engine import EngineSection
from gates.engines import ENGINES
from gates.engines.tensorrt_llm import build_command
from gates.errors import CapabilityError

HAVE_TRTLLM = importlib.util.find_spec("tensorrt_llm") is not None


def test_engines_are_listed_explicitly() -> None:
    assert set(ENGINES) == {"torch", "torch-int8", "torch-fp8", "tensorrt-llm", "onnxruntime-genai", "openvino"}


def test_trtllm_build_command_from_config() -> None:
    cfg = EngineSection(backend="tensorrt-llm", max_batch_size=32, max_input_len=1024, max_output_len=256)
    cmd = build_command(Path("/a/ckpt"), Path("/a/engine"), cfg)
    assert cmd[0] == "trtllm-build"
    assert "--checkpoint_dir=/a/ckpt" in cmd and "--output_dir=/a/engine" in cmd
    assert "--max_batch_size=32" in cmd and "--max_input_len=1024" in cmd and "--max_seq_len=1280" in cmd


@pytest.mark.skipif(HAVE_TRTLLM, reason="TensorRT-LLM is installed here")
def test_trtllm_refused_with_hint_where_absent() -> None:
    with pytest.raises(CapabilityError, match=r"not installed here.*\.\[gpu\]"):
        ENGINES["tensorrt-llm"].check_available()


@pytest.mark.gpu
@pytest.mark.skipif(
    not HAVE_TRTLLM,
    reason="TensorRT-LLM is not installable on these machines (PyPI ships a stub; "
    "NVIDIA's index is unreachable): the end-to-end engine build runs on GPU runners only",
)
def test_trtllm_engine_builds_and_runs(tiny_model: Path, artifacts_root: Path) -> None:
    import numpy as np

    from gates.artifacts import ArtifactStore, ModelRef, tree_digest
    from gates.engines.torch_runner import TorchRunner

    ref = ModelRef("candidate", tiny_model, tree_digest(tiny_model), "none", "real")
    build = ENGINES["tensorrt-llm"].build(ArtifactStore(artifacts_root), ref, EngineSection(backend="tensorrt-llm"))
    assert (build.serve_path / "engine" / "rank0.engine").is_file() and build.device == "cuda"
    runner, reference = ENGINES["tensorrt-llm"].runner(build.serve_path, 1), TorchRunner(tiny_model, 1)
    ids = reference.encode("The quick brown fox")
    tokens, logprobs = runner.generate(ids, 8)
    assert list(runner.stream(ids, 8)) == tokens
    want = reference.score(ids, tokens)  # the float32 model on the fp16 engine's own tokens
    assert logprobs.shape == want.shape
    assert float(np.mean(logprobs.argmax(-1) == want.argmax(-1))) >= 0.75
    np.testing.assert_allclose(runner.score(ids, tokens), logprobs, atol=2e-2)  # forced = generated
