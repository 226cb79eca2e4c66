from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from gates.config.schema import QuantizerOverride, QuantizeSection
from gates.errors import CapabilityError, ExitCode
from gates.models.loader import MODELOPT_STATE, load_model
from gates.optimize.quantize import FORMATS, build_quant_config, check_format_supported, cuda_available


def _section(**kw: Any) -> QuantizeSection:
    return QuantizeSection(**{"format": "int8_sq", "calibration": "c.jsonl", **kw})


def test_user_overrides_follow_defaults_and_excludes_come_last() -> None:
    cfg = build_quant_config(
        _section(
            quant_cfg={"*weight_quantizer": QuantizerOverride(num_bits=2, axis=0)},
            exclude=["*lm_head*", "*embed*"],
        )
    )
    entries = cfg["quant_cfg"]
    assert cfg["algorithm"] == "smoothquant"
    names = [e["quantizer_name"] for e in entries]
    override = names.index("*weight_quantizer", names.index("*weight_quantizer") + 1)
    assert entries[override]["cfg"] == {"num_bits": 2, "axis": 0}
    assert entries[-2:] == [
        {"quantizer_name": "*lm_head*", "enable": False},
        {"quantizer_name": "*embed*", "enable": False},
    ]


def test_fp8_kv_cache_entries_are_added() -> None:
    cfg = build_quant_config(_section(kv_cache="fp8"))
    assert any(e["quantizer_name"] == "*[kv]_bmm_quantizer" for e in cfg["quant_cfg"])


@pytest.mark.skipif(cuda_available(), reason="this machine has CUDA")
def test_nvfp4_is_refused_on_cpu_before_any_work() -> None:
    with pytest.raises(CapabilityError) as info:
        check_format_supported("nvfp4")
    assert "needs an NVIDIA GPU" in str(info.value) and "int8_sq" in str(info.value)
    assert info.value.exit_code == ExitCode.INFRA


def test_cpu_formats_are_simulated() -> None:
    for name, info in FORMATS.items():
        if name != "none" and not info.needs_cuda:
            assert check_format_supported(name) == "simulated"


def test_shipped_artifact_loads_with_its_quantization(tiny_model: Path, int8_candidate: tuple[Path, Any]) -> None:
    """Gate what you ship: the saved candidate reproduces the quantized model exactly."""
    path, quantized = int8_candidate
    assert (path / MODELOPT_STATE).is_file()
    assert not (path / "model.safetensors").exists(), "weights come from the modelopt state only"
    loaded, tok = load_model(path)
    base, _ = load_model(tiny_model)
    ids = tok("We the People of the United States", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        want = quantized(input_ids=ids).logits
        got = loaded(input_ids=ids).logits
        plain = base(input_ids=ids).logits
    assert torch.equal(got, want)
    assert not torch.equal(plain, want), "quantization must change the numerics"


def test_artifact_carries_the_unified_hf_export(int8_candidate: tuple[Path, Any]) -> None:
    import json

    path, _ = int8_candidate
    export = path / "hf_export"
    config = json.loads((export / "config.json").read_text())
    assert config["quantization_config"]["quant_method"] == "modelopt"
    assert (export / "hf_quant_config.json").is_file() and (export / "model.safetensors").is_file()
