"""The tritonserver command line gates builds (the running server is tested in test_serving.py)."""

from __future__ import annotations

from pathlib import Path

from gates.triton.server import TritonServer


def test_gpu_metrics_only_when_a_model_runs_on_the_gpu(tmp_path: Path) -> None:
    def flag(server: TritonServer) -> list[str]:
        cmd = server.command(Path("/bin/tritonserver"), tmp_path / "backends")
        return [a for a in cmd if a.startswith("--allow-gpu-metrics=")]

    assert flag(TritonServer(tmp_path / "models", tmp_path)) == ["--allow-gpu-metrics=false"]
    assert flag(TritonServer(tmp_path / "models", tmp_path, gpu_metrics=True)) == ["--allow-gpu-metrics=true"]
