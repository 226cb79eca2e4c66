"""The torch engine honours engine.device/engine.dtype: what it serves, where Triton places it."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from gates.artifacts import ArtifactStore, ModelRef, tree_digest
from gates.config.engine import EngineSection
from gates.engines import ENGINES, load_runner
from gates.engines.torch_runner import TorchRunner
from gates.models.placement import cuda_available
from gates.triton.repository import render_config, write_model

PROMPT = "Shall I compare thee to a summer's day?"


def test_default_on_cpu_serves_the_artifact_itself(tiny_model: Path, tmp_path: Path) -> None:
    ref = ModelRef("baseline", tiny_model, tree_digest(tiny_model), "none", "real")
    build = ENGINES["torch"].build(ArtifactStore(tmp_path), ref, EngineSection(device="cpu"))
    assert (build.serve_path, build.device, build.dtype) == (tiny_model, "cpu", "fp32")
    assert build.latency_note == "latency measured on the served model"
    repo = tmp_path / "repo"
    ENGINES["torch"].write_serving(repo, "baseline", build, 1)
    assert "kind: KIND_CPU" in (repo / "baseline" / "config.pbtxt").read_text()


def test_bf16_engine_runs_the_model_in_bf16(tiny_model: Path, tmp_path: Path) -> None:
    ref = ModelRef("baseline", tiny_model, tree_digest(tiny_model), "none", "real")
    build = ENGINES["torch"].build(ArtifactStore(tmp_path), ref, EngineSection(device="cpu", dtype="bf16"))
    assert build.serve_path != tiny_model
    spec = json.loads((build.serve_path / "engine.json").read_text())
    assert (spec["device"], spec["dtype"], spec["model_path"]) == ("cpu", "bf16", str(tiny_model))
    runner = load_runner(build.serve_path, 1)
    assert isinstance(runner, TorchRunner)
    assert {p.dtype for p in runner.model.parameters()} == {torch.bfloat16}
    fp32 = TorchRunner(tiny_model, 1)
    ids = runner.encode(PROMPT)
    bf16_scores, fp32_scores = runner.score(ids, ids[:5]), fp32.score(ids, ids[:5])
    assert bf16_scores.dtype == fp32_scores.dtype and bf16_scores.shape == fp32_scores.shape
    assert 0 < float(abs(bf16_scores - fp32_scores).max()) < 0.5  # bf16 rounding, not another model
    tokens, logprobs = runner.generate(ids, 3)
    assert len(tokens) == logprobs.shape[0] and list(runner.stream(ids, 3)) == tokens


def test_triton_instance_group_follows_the_device() -> None:
    assert "kind: KIND_GPU" in render_config("m", Path("/a"), device="cuda")
    assert "kind: KIND_CPU" in render_config("m", Path("/a"))


def test_cuda_build_writes_a_gpu_instance_group(tiny_model: Path, tmp_path: Path) -> None:
    if not cuda_available():  # the placement is decided here; CUDA decides where "auto" lands
        build = ENGINES["torch"].build(
            ArtifactStore(tmp_path),
            ModelRef("baseline", tiny_model, tree_digest(tiny_model), "none", "real"),
            EngineSection(device="auto"),
        )
        assert build.device == "cpu"
        return
    build = ENGINES["torch"].build(
        ArtifactStore(tmp_path),
        ModelRef("baseline", tiny_model, tree_digest(tiny_model), "none", "real"),
        EngineSection(device="cuda"),
    )
    assert (build.device, build.dtype) == ("cuda", "bf16")
    write_model(tmp_path / "repo", "b", build.serve_path, device=build.device)
    assert "kind: KIND_GPU" in (tmp_path / "repo" / "b" / "config.pbtxt").read_text()
