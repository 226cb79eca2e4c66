"""The torch-fp8 engine: FP8 E4M3 layers with the artifact's numerics, device refusals, engine artifacts.

The conversion and the numerics run here: ``float8_e4m3fn`` casts and ``torch._scaled_mm`` work on
CPU in this torch. What needs FP8 tensor cores (the engine's build and serving on CUDA) is marked
``gpu``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from gates.artifacts import ArtifactStore, ModelRef, tree_digest
from gates.config.engine import EngineSection
from gates.config.parse import parse_pipeline
from gates.config.schema import QuantizeSection
from gates.engines import ENGINES, engine_for
from gates.engines.fp8_kernels import (
    Fp8Linear,
    check_fp8_device,
    extract_fp8_layers,
    install_fp8_layers,
    scaled_mm,
    to_fp8,
)
from gates.engines.torch_runner import TorchRunner
from gates.errors import CapabilityError, ConfigError
from gates.models.loader import load_model
from gates.models.placement import cuda_capability
from gates.optimize.quantize import calibration_batches, quantize, save_quantized
from gates.quality.golden import load_calibration

REPO = Path(__file__).resolve().parents[2]
PROMPT = "Shall I compare thee to a summer's day? Thou art more lovely"
FP8_GPU = (cuda_capability() or (0, 0)) >= (8, 9)


def _logprobs(model: Any, tok: Any) -> torch.Tensor:
    device = next(model.parameters()).device
    ids = tok(PROMPT, return_tensors="pt")["input_ids"].to(device)
    with torch.no_grad():
        return torch.log_softmax(model(input_ids=ids).logits[0].float(), -1).cpu()


@pytest.fixture(scope="module")
def fp8_candidate(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """An FP8 candidate saved like the optimize stage saves it, plus the in-memory (simulated) model."""
    model, tok = load_model(tiny_model)
    section = QuantizeSection(format="fp8", calibration="golden_prompts/calibration.jsonl", samples=8)
    texts = load_calibration(REPO / "golden_prompts" / "calibration.jsonl")[:8]
    model = quantize(model, section, calibration_batches(tok, texts, 4, 32))
    out = tmp_path_factory.mktemp("fp8")
    save_quantized(model, tok, out)
    return out, model


def test_fp8_weights_are_the_fake_quantized_weights(fp8_candidate: tuple[Path, Any]) -> None:
    path, _ = fp8_candidate
    model, _ = load_model(path)
    layers = extract_fp8_layers(model)
    assert len(layers) == 14  # 2 layers x (q, k, v, o, gate, up, down); lm_head is excluded by the config
    for name, tensors in layers.items():
        mod = model.get_submodule(name)
        assert tensors["weight_fp8"].dtype == torch.float8_e4m3fn
        with torch.no_grad():
            fake = mod.weight_quantizer(mod.weight.float())
        # dequantizing the stored FP8 weight gives Model Optimizer's fake-quantized weight bit for bit
        assert torch.equal(tensors["weight_fp8"].float() * tensors["w_scale"], fake), name
        assert torch.equal(tensors["in_amax"], mod.input_quantizer.amax.float().reshape(()))


def test_fp8_layers_match_the_simulated_artifact(fp8_candidate: tuple[Path, Any]) -> None:
    path, simulated = fp8_candidate
    engine, tok = load_model(path)
    install_fp8_layers(engine, extract_fp8_layers(engine))
    assert sum(isinstance(m, Fp8Linear) for m in engine.modules()) == 14
    want, got = _logprobs(simulated, tok), _logprobs(engine, tok)
    assert torch.equal(want.argmax(-1), got.argmax(-1))
    kl = float((want.exp() * (want - got)).sum(-1).mean())
    assert kl < 1e-4, kl
    # and it is not the float model: the FP8 grid is really applied
    import modelopt.torch.quantization as mtq

    base, _ = load_model(path)
    mtq.disable_quantizer(base, "*")
    assert float((want - _logprobs(base, tok)).abs().max()) > 1e-3


def test_input_quantization_is_the_input_quantizers() -> None:
    x = torch.tensor([[0.013, -3.7, 200.0, 1e-4]])
    amax = torch.tensor(4.0)
    q, inv = to_fp8(x, amax)
    assert q.dtype == torch.float8_e4m3fn
    from modelopt.torch.quantization.tensor_quant import fp8_eager

    assert torch.equal(q.float() * inv, fp8_eager(x, amax))  # 200 clamps to amax, as in the simulation


def test_scaled_mm_is_the_dequantized_product() -> None:
    a, inv_a = to_fp8(torch.randn(5, 32, generator=torch.Generator().manual_seed(0)), torch.tensor(3.0))
    b, inv_b = to_fp8(torch.randn(24, 32, generator=torch.Generator().manual_seed(1)), torch.tensor(2.0))
    want = (a.float() * inv_a) @ (b.float() * inv_b).t()
    assert torch.allclose(scaled_mm(a, b, inv_a, inv_b, torch.float32), want, rtol=1e-5, atol=1e-5)


def test_int8_artifact_is_refused_by_name(int8_candidate: tuple[Path, Any]) -> None:
    model, _ = load_model(int8_candidate[0])
    with pytest.raises(CapabilityError, match=r"FP8 E4M3 per-tensor layers only; model\.layers\.0\.self_attn\.q_proj"):
        extract_fp8_layers(model)


def test_device_refusals_name_the_reason() -> None:
    with pytest.raises(CapabilityError, match=r"no CUDA device is visible"):
        check_fp8_device(None)
    with pytest.raises(CapabilityError, match=r"compute capability >= 8\.9.*this GPU is compute capability 8\.0"):
        check_fp8_device((8, 0))
    check_fp8_device((8, 9))
    check_fp8_device((9, 0))


@pytest.mark.skipif(FP8_GPU, reason="this machine has FP8 tensor cores")
def test_engine_refused_here_before_building(fp8_candidate: tuple[Path, Any], tmp_path: Path) -> None:
    with pytest.raises(CapabilityError, match="torch-fp8"):
        ENGINES["torch-fp8"].check_available()
    ref = ModelRef("candidate", fp8_candidate[0], tree_digest(fp8_candidate[0]), "fp8", "simulated")
    with pytest.raises(CapabilityError, match="torch-fp8"):
        ENGINES["torch-fp8"].build(ArtifactStore(tmp_path), ref, EngineSection(backend="torch-fp8"))
    assert not (tmp_path / "store").exists()  # refused before any engine artifact was written


def test_config_ties_the_engine_to_fp8_on_cuda(tmp_path: Path) -> None:
    def cfg(fmt: str, device: str) -> str:
        return (
            f"name: x\nmodel: {{source: builtin:tiny-llama}}\noptimize:\n  quantize: {{format: {fmt}, "
            f"calibration: c.jsonl}}\nengine:\n  backend: torch-fp8\n  device: {device}\n"
            "golden: {suites: [g.jsonl]}\n"
        )

    with pytest.raises(ConfigError, match=r"torch-fp8' runs formats fp8; .*'int8'"):
        engine_for(parse_pipeline(cfg("int8", "auto"), tmp_path / "p.yaml"))
    with pytest.raises(ConfigError, match=r"p.yaml:7: at key engine.device: .*engine.device cannot be cpu"):
        engine_for(parse_pipeline(cfg("fp8", "cpu"), tmp_path / "p.yaml"))
    assert parse_pipeline(cfg("fp8", "cuda"), tmp_path / "p.yaml").config.engine.backend == "torch-fp8"


@pytest.mark.gpu
@pytest.mark.skipif(not FP8_GPU, reason="needs FP8 tensor cores (compute capability >= 8.9)")
def test_engine_serves_fp8_on_cuda(fp8_candidate: tuple[Path, Any], tmp_path: Path) -> None:
    path, simulated = fp8_candidate
    ref = ModelRef("candidate", path, tree_digest(path), "fp8", "simulated")
    build = ENGINES["torch-fp8"].build(ArtifactStore(tmp_path), ref, EngineSection(backend="torch-fp8"))
    spec = json.loads((build.serve_path / "engine.json").read_text())
    assert (spec["device"], spec["dtype"], spec["fp8_layers"]) == ("cuda", "bf16", 14)
    runner = TorchRunner(build.serve_path, 1)
    assert sum(isinstance(m, Fp8Linear) for m in runner.model.modules()) == 14
    want = _logprobs(simulated.to("cuda").to(torch.bfloat16), runner.tokenizer)
    got = _logprobs(runner.model, runner.tokenizer)
    assert float((want.argmax(-1) == got.argmax(-1)).float().mean()) > 0.9
    tokens, logprobs = runner.generate(runner.encode(PROMPT), 4)
    assert len(tokens) == logprobs.shape[0] > 0


@pytest.mark.gpu
def test_scaled_mm_pads_shapes_cuda_refuses() -> None:
    a, inv_a = to_fp8(torch.randn(3, 20), torch.tensor(3.0))  # K=20, N=10: not multiples of 16
    b, inv_b = to_fp8(torch.randn(10, 20), torch.tensor(2.0))
    want = scaled_mm(a, b, inv_a, inv_b, torch.float32)
    got = scaled_mm(a.cuda(), b.cuda(), inv_a.cuda(), inv_b.cuda(), torch.float32)
    assert got.shape == (3, 10) and torch.allclose(got.cpu(), want, rtol=1e-2, atol=1e-2)
