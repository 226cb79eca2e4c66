"""benchmarks/gpu_gate.py: without FP8-capable CUDA it says why and exits 2 (run as a user runs it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gates.models.placement import cuda_capability

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.skipif((cuda_capability() or (0, 0)) >= (8, 9), reason="this machine can run the GPU gate")
def test_without_fp8_cuda_says_why_and_exits_2() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gpu_gate.py"), "--users", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout.startswith("gpu_gate: ")
    assert "CUDA" in proc.stdout or "compute capability" in proc.stdout
