"""Every format Model Optimizer runs on this machine: the shipped artifact loads back and drifts finitely."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from gates.config.schema import QUANT_FORMATS, QuantizeSection
from gates.models.loader import load_model
from gates.optimize.quantize import FORMATS, calibration_batches, cuda_available, quantize, save_quantized
from gates.quality.golden import load_calibration

REPO = Path(__file__).resolve().parents[2]
RUNNABLE = [n for n, i in FORMATS.items() if n != "none" and (cuda_available() or not i.needs_cuda)]


def test_schema_and_mapping_agree() -> None:
    assert set(QUANT_FORMATS) == set(FORMATS)
    import modelopt.torch.quantization as mtq

    for info in FORMATS.values():
        assert info.modelopt_cfg is None or hasattr(mtq, info.modelopt_cfg), info


@pytest.mark.parametrize("fmt", RUNNABLE)
def test_format_round_trip_and_drift(fmt: str, tiny_model: Path, tmp_path: Path) -> None:
    base, tok = load_model(tiny_model)
    model, _ = load_model(tiny_model)
    texts = load_calibration(REPO / "golden_prompts" / "calibration.jsonl")[:8]
    model = quantize(model, QuantizeSection(format=fmt, calibration="c.jsonl"), calibration_batches(tok, texts, 2, 64))
    save_quantized(model, tok, tmp_path)
    served, _ = load_model(tmp_path)
    ids = tok("It was the best of times, it was the worst of times", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        ref = torch.log_softmax(base(input_ids=ids).logits, -1)
        got = torch.log_softmax(served(input_ids=ids).logits, -1)
        want = torch.log_softmax(model(input_ids=ids).logits, -1)
    assert torch.allclose(got, want, atol=1e-5), "the shipped artifact reproduces the quantized model"
    kl = float((ref.exp() * (ref - got)).sum(-1).mean())
    assert math.isfinite(kl) and 0 <= kl < 1.0, kl
