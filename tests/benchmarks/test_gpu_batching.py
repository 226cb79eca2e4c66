"""benchmarks/gpu_batching.py: refuses without FP8-capable CUDA (exit 2, the reason first); its
closed-loop driver and figures are checked on CPU with the tiny model through the same scheduler."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from gates.engines.torch_runner import TorchRunner
from gates.models.placement import cuda_capability

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "gpu_batching.py"


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_batching", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif((cuda_capability() or (0, 0)) >= (8, 9), reason="this machine can run the GPU benchmark")
def test_without_fp8_cuda_says_why_and_exits_2() -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--streams", "1"], capture_output=True, text=True, timeout=300, cwd=REPO
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout.startswith("gpu_batching: ")
    assert "CUDA" in proc.stdout or "compute capability" in proc.stdout


def test_closed_loop_streams_through_the_batching_engine(tiny_model: Path) -> None:
    bench = _module()
    runner = TorchRunner(tiny_model, 1)
    prompts = [runner.encode(p) for p in bench.demo_prompts()]
    arms = {name: bench.measure(runner, prompts, [1, 4], 2, 12) for name in ("bf16", "fp8")}
    for points in arms.values():
        assert [p["errors"] for p in points.values()] == [[], []]
        assert points[1]["batch_size_max"] == 1 and points[4]["batch_size_max"] >= 2
        assert all(p["tokens"] > 0 and p["tokens_per_s"] > 0 for p in points.values())
    exact = {name: bench.batched_exact(runner, arms[name][4]["answers"], prompts, 12) for name in arms}
    assert exact == {"bf16": 1.0, "fp8": 1.0}
    assert bench.top1_agreement(runner, runner, prompts[:3], 12) == 1.0
    last = bench.summarize(arms, 1.0, exact).splitlines()[-1]
    assert last.startswith("fp8_vs_bf16_tokens_per_s_1=") and "fp8_vs_bf16_tokens_per_s_4=" in last
    assert last.endswith("top1=1.0000 batched_exact_bf16=1.000 batched_exact_fp8=1.000")
