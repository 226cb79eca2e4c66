"""The torch-int8 engine: integer kernels with the artifact's numerics, refusals, engine artifacts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from gates.artifacts import ArtifactStore, ModelRef, tree_digest
from gates.config.engine import EngineSection
from gates.config.parse import parse_pipeline
from gates.config.schema import QuantizeSection
from gates.engines import ENGINES, engine_for
from gates.engines.int8_kernels import Int8Linear, extract_int8_layers, install_int8_layers, int_mm
from gates.errors import CapabilityError, ConfigError, InfraError
from gates.models.loader import load_model
from gates.optimize.quantize import calibration_batches, quantize, save_quantized
from gates.quality.golden import load_calibration

REPO = Path(__file__).resolve().parents[2]
PROMPT = "Shall I compare thee to a summer's day? Thou art more lovely"


def _logprobs(model: Any, tok: Any) -> torch.Tensor:
    ids = tok(PROMPT, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        return torch.log_softmax(model(input_ids=ids).logits[0].float(), -1)


def test_int8_layers_match_the_simulated_artifact(int8_candidate: tuple[Path, Any]) -> None:
    path, simulated = int8_candidate
    engine, tok = load_model(path)
    install_int8_layers(engine, extract_int8_layers(engine))
    int8 = [m for m in engine.modules() if isinstance(m, Int8Linear)]
    assert len(int8) == 14  # 2 layers x (q, k, v, o, gate, up, down)
    assert all(m.weight_kn.dtype == torch.int8 for m in int8)
    want, got = _logprobs(simulated, tok), _logprobs(engine, tok)
    assert torch.equal(want.argmax(-1), got.argmax(-1))
    kl = float((want.exp() * (want - got)).sum(-1).mean())
    assert kl < 1e-4, kl
    # and it is not the float model: the INT8 grid is really applied
    base, _ = load_model(path)  # modelopt model with quantizers disabled = float weights after smoothing
    import modelopt.torch.quantization as mtq

    mtq.disable_quantizer(base, "*")
    assert float((want - _logprobs(base, tok)).abs().max()) > 1e-3


def test_int8_linear_computes_in_integers() -> None:
    w = torch.tensor([[1, -2], [3, 127]], dtype=torch.int8)
    layer = Int8Linear(
        {"weight_kn": w.t().contiguous(), "w_scale": torch.tensor([0.5, 0.25]), "in_scale": torch.tensor(0.1)}
    )
    x = torch.tensor([[0.1, 0.26], [100.0, -100.0]])  # 0.26 rounds to 3 steps; 100 clamps to 127/-128
    q = torch.tensor([[1.0, 3.0], [127.0, -128.0]])
    want = (q @ w.float().t()) * 0.1 * torch.tensor([0.5, 0.25])
    assert torch.allclose(layer(x), want)


@pytest.fixture(scope="module")
def int8_wo_candidate(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    model, tok = load_model(tiny_model)
    section = QuantizeSection(format="int8_wo", calibration="golden_prompts/calibration.jsonl", samples=4)
    texts = load_calibration(REPO / "golden_prompts" / "calibration.jsonl")[:4]
    model = quantize(model, section, calibration_batches(tok, texts, 4, 32))
    out = tmp_path_factory.mktemp("int8_wo")
    save_quantized(model, tok, out)
    return out


def test_weight_only_artifact_is_refused_by_name(int8_wo_candidate: Path) -> None:
    model, _ = load_model(int8_wo_candidate)
    with pytest.raises(CapabilityError, match=r"model\.layers\.0\.self_attn\.q_proj has weight-only"):
        extract_int8_layers(model)


def test_float_model_is_refused(tiny_model: Path) -> None:
    model, _ = load_model(tiny_model)
    with pytest.raises(CapabilityError, match="found no INT8 layer"):
        extract_int8_layers(model)


def test_engine_artifact_is_reused_and_served_by_the_loader(
    int8_candidate: tuple[Path, Any], tmp_path: Path, tiny_model: Path
) -> None:
    path, simulated = int8_candidate
    store = ArtifactStore(tmp_path / "store")
    ref = ModelRef("candidate", path, tree_digest(path), "int8_sq", "simulated")
    engine = ENGINES["torch-int8"]
    engine.check_available()
    first = engine.build(store, ref, EngineSection(backend="torch-int8"))
    again = engine.build(store, ref, EngineSection(backend="torch-int8"))
    assert not first.reused and again.reused and first.digest == again.digest
    assert first.latency_representative and "INT8 integer GEMMs" in first.latency_note
    assert json.loads((first.serve_path / "engine.json").read_text())["int8_layers"] == 14
    served, tok = load_model(first.serve_path)
    assert any(isinstance(m, Int8Linear) for m in served.modules())
    assert torch.equal(_logprobs(served, tok).argmax(-1), _logprobs(simulated, tok).argmax(-1))
    # the baseline stays float: that is what the INT8 engine is compared with
    # (on CPU: on a CUDA machine ``device: auto`` places the baseline in bf16, a new build)
    base_ref = ModelRef("baseline", tiny_model, "b" * 64, "none", "real")
    base = engine.build(store, base_ref, EngineSection(device="cpu"))
    assert base.backend == "torch" and base.serve_path == tiny_model


def test_engine_refuses_a_model_that_changed_under_it(int8_candidate: tuple[Path, Any], tmp_path: Path) -> None:
    src, _ = int8_candidate
    copy = tmp_path / "model"
    shutil.copytree(src, copy)
    (copy / "manifest.json").write_text(json.dumps({"output_digest": "a" * 64}))
    store = ArtifactStore(tmp_path / "store")
    build = ENGINES["torch-int8"].build(
        store, ModelRef("candidate", copy, "a" * 64, "int8_sq", "simulated"), EngineSection()
    )
    (copy / "manifest.json").write_text(json.dumps({"output_digest": "c" * 64}))
    with pytest.raises(InfraError, match=r"built from model a+, but .* now holds c+"):
        load_model(build.serve_path)


def test_config_refuses_torch_int8_for_other_formats(tmp_path: Path) -> None:
    text = (
        "name: p\nmodel: {source: builtin:tiny-llama}\n"
        "optimize:\n  quantize: {format: fp8, calibration: c.jsonl}\n"
        "engine:\n  backend: torch-int8\ngolden: {suites: [g.jsonl]}\n"
    )
    with pytest.raises(
        ConfigError,
        match=r"p.yaml:4: at key optimize.quantize.format: .*torch-int8' runs formats int8, int8_sq; .*'fp8'",
    ):
        engine_for(parse_pipeline(text, tmp_path / "p.yaml"))


def test_int_mm_on_cpu_is_torch_int_mm() -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.randint(-128, 128, (3, 24), dtype=torch.int8, generator=g)
    b = torch.randint(-128, 128, (24, 16), dtype=torch.int8, generator=g)
    assert torch.equal(int_mm(a, b), a.int() @ b.int())


@pytest.mark.gpu
def test_int_mm_on_cuda_pads_shapes_the_kernel_refuses() -> None:
    g = torch.Generator().manual_seed(0)
    for m, k, n in ((1, 24, 16), (5, 12, 10), (32, 64, 64)):  # M <= 16 and K, N not multiples of 8
        a = torch.randint(-128, 128, (m, k), dtype=torch.int8, generator=g)
        b = torch.randint(-128, 128, (k, n), dtype=torch.int8, generator=g)
        assert torch.equal(int_mm(a.cuda(), b.cuda()).cpu(), a.int() @ b.int()), (m, k, n)
