"""engine.device / engine.dtype: where the PyTorch engines run, and refusals before model work."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gates.config.engine import EngineSection
from gates.config.parse import parse_pipeline
from gates.errors import ConfigError
from gates.models.placement import cuda_available, place, torch_dtype


def test_auto_is_cuda_in_bf16_where_cuda_is_and_cpu_in_fp32_elsewhere() -> None:
    assert EngineSection().placement(cuda=False) == ("cpu", "fp32")
    assert EngineSection().placement(cuda=True) == ("cuda", "bf16")
    assert EngineSection(device="cpu").placement(cuda=True) == ("cpu", "fp32")
    assert EngineSection(dtype="fp16").placement(cuda=True) == ("cuda", "fp16")
    assert EngineSection(device="cpu", dtype="bf16").placement(cuda=False) == ("cpu", "bf16")


def test_bad_values_name_the_key_and_line(tmp_path: Path) -> None:
    text = "name: x\nmodel: {source: builtin:tiny-llama}\nengine:\n  device: gpu\ngolden: {suites: [g.jsonl]}\n"
    with pytest.raises(ConfigError, match=r"(?s)p\.yaml:4: .*engine\.device"):
        parse_pipeline(text, tmp_path / "p.yaml")
    text = "name: x\nmodel: {source: builtin:tiny-llama}\nengine:\n  dtype: float8\ngolden: {suites: [g.jsonl]}\n"
    with pytest.raises(ConfigError, match=r"(?s)p\.yaml:4: .*engine\.dtype"):
        parse_pipeline(text, tmp_path / "p.yaml")


def test_place_moves_and_casts_and_leaves_cpu_fp32_alone() -> None:
    layer = torch.nn.Linear(4, 4)
    assert place(layer, "cpu", "fp32") is layer and layer.weight.dtype == torch.float32
    assert place(layer, "cpu", "bf16").weight.dtype == torch.bfloat16
    assert torch_dtype("fp16") == torch.float16


@pytest.mark.gpu
def test_place_on_cuda() -> None:
    assert cuda_available()
    layer = place(torch.nn.Linear(4, 4), "cuda", "bf16")
    assert layer.weight.is_cuda and layer.weight.dtype == torch.bfloat16
