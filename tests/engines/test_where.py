"""``gates formats``: which engine runs a format on real kernels, read from the engines' declarations."""

from __future__ import annotations

import importlib.util

from gates.engines import ENGINES
from gates.engines.where import format_places, formats_table, unavailable_engines
from gates.optimize.quantize import FORMATS


def _by_format(capability: tuple[int, int] | None) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    return {p.format: (p.real_here, p.real_gpu) for p in format_places(capability)}


def test_cpu_machine() -> None:
    places = _by_format(None)
    assert places["int8_sq"][0] == ("torch-int8",)
    assert places["int4_wo"][0] == ("onnxruntime-genai", "openvino")
    assert places["fp8"] == ((), ("torch-fp8 (sm89+)", "tensorrt-llm (sm89+)"))
    assert places["nvfp4"][0] == () and places["none"] == ((), ())


def test_gpu_machines_by_compute_capability() -> None:
    assert _by_format((8, 0))["fp8"][0] == ()  # A100: no FP8 tensor cores
    assert _by_format((9, 0))["fp8"][0] == ("torch-fp8", "tensorrt-llm")
    assert _by_format((9, 0))["int8"][0] == ("torch-int8", "tensorrt-llm")
    assert _by_format((9, 0))["int4_wo"][0] == ("tensorrt-llm",)  # ORT GenAI here is the CPU package
    assert _by_format((10, 0))["nvfp4"][0] == ("tensorrt-llm",)


def test_a_gpu_without_the_software_says_so() -> None:
    # the H100 used for issue 12 had FP8 tensor cores but no TensorRT-LLM
    places = {p.format: p.real_here for p in format_places((9, 0), frozenset({"tensorrt-llm"}))}
    assert places["fp8"] == ("torch-fp8", "tensorrt-llm (not installed)")
    if importlib.util.find_spec("tensorrt_llm") is None:  # not installable on these machines
        assert "tensorrt-llm" in unavailable_engines()


def test_every_declared_format_is_listed_and_known() -> None:
    for engine in ENGINES.values():
        assert set(engine.kernels.formats) <= set(FORMATS), engine.name
    text = "\n".join(formats_table())
    for name in ENGINES:
        assert f"  {name} " in text
    assert "on a GPU runner: torch-fp8 (sm89+), tensorrt-llm (sm89+)" in text
