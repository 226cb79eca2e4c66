"""Exit codes and messages of `gates run` on bad input: before any model work, nothing left running."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from gates.models.placement import cuda_available

GOOD = """
name: cli
model:
  source: builtin:tiny-llama
optimize:
  quantize:
    format: {fmt}
    calibration: golden_prompts/calibration.jsonl
engine:
  backend: {backend}
golden:
  suites: [{suite}]
"""


def gates(args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gates.cli", *args], capture_output=True, text=True, timeout=300, cwd=cwd
    )


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (
            "name: x\nmodel:\n  source: builtin:tiny-llama\n  revision: main\ngolden:\n  suites: [a.jsonl]\n",
            ":4: invalid pipeline config\n==> At key: model.revision\n==> unknown key",
        ),
        (
            "name: x\nmodel:\n  source: builtin:tiny-llama\ngolden:\n  suites: [a.jsonl]\nload:\n  duration_s: soon\n",
            ":7: invalid pipeline config\n==> At key: load.duration_s",
        ),
        (
            "name: x\nmodel:\n  source: builtin:tiny-llama\ngolden:\n  suites: [a.jsonl]\noptimize:\n  quantize:\n"
            "    format: int2\n    calibration: c.jsonl\n",
            ":8: invalid pipeline config\n==> At key: optimize.quantize.format",
        ),
    ],
)
def test_bad_config_exits_2_naming_file_key_line(
    write_pipeline: Callable[..., Path], no_leaked_servers: None, body: str, needle: str
) -> None:
    path = write_pipeline(body)
    proc = gates(["run", str(path), "--output", str(path.parent / "out")])
    assert proc.returncode == 2, proc.stderr
    assert f"gates: error: {path}{needle}" in proc.stderr
    assert not (path.parent / "out").exists() and proc.stdout == ""


def test_bad_golden_file_exits_2_before_any_model_work(
    write_pipeline: Callable[..., Path], project: Path, no_leaked_servers: None, tmp_path: Path
) -> None:
    bad = project / "golden_prompts" / "bad.jsonl"
    bad.write_text(
        "\n".join(
            json.dumps(r)
            for r in [{"id": "a", "prompt": "one"}, {"id": "b", "prompt": ""}, {"id": "a", "prompt": "three"}]
        )
        + "\n"
    )
    path = write_pipeline(GOOD.format(fmt="int8_sq", backend="torch", suite="golden_prompts/bad.jsonl"))
    art = tmp_path / "art"
    proc = gates(["run", str(path), "--artifacts", str(art), "--output", str(tmp_path / "out")])
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"{bad}: lines 1, 3: duplicate id (expectation ExpectColumnValuesToBeUnique on 'id')" in proc.stderr
    assert f"{bad}: lines 2: empty prompt" in proc.stderr
    assert "[optimize]" not in proc.stdout
    assert not (art / "models").exists(), "no model was built"


def test_tensorrt_llm_backend_refused_with_hint(write_pipeline: Callable[..., Path], tmp_path: Path) -> None:
    path = write_pipeline(GOOD.format(fmt="int8_sq", backend="tensorrt-llm", suite="golden_prompts/demo.jsonl"))
    proc = gates(["run", str(path), "--artifacts", str(tmp_path / "art")])
    assert proc.returncode == 3
    assert "TensorRT-LLM is not installed here" in proc.stderr and ".[gpu]" in proc.stderr
    assert "[optimize]" not in proc.stdout


def test_gpu_only_format_refused_before_work(write_pipeline: Callable[..., Path], tmp_path: Path) -> None:
    path = write_pipeline(GOOD.format(fmt="nvfp4", backend="torch", suite="golden_prompts/demo.jsonl"))
    proc = gates(["run", str(path), "--artifacts", str(tmp_path / "art")])
    assert proc.returncode == 3
    assert "'nvfp4' needs an NVIDIA GPU" in proc.stderr


def test_formats_lists_mapping() -> None:
    proc = gates(["formats"])
    assert proc.returncode == 0
    assert "int8_sq" in proc.stdout and "INT8_SMOOTHQUANT_CFG" in proc.stdout and "nvfp4" in proc.stdout


def test_missing_config_file_exits_2(tmp_path: Path) -> None:
    proc = gates(["run", str(tmp_path / "none.yaml")])
    assert proc.returncode == 2 and "none.yaml: no such pipeline file" in proc.stderr


# -- issue 17: every bad input exits 2 before any model work, never an internal error -------------
def gates_env(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "gates.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env},
    )


MINIMAL = "name: x\nmodel:\n  source: builtin:tiny-llama\ngolden:\n  suites: [golden_prompts/demo.jsonl]\n"


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"GATES_PR_NUMBER": "7; rm -rf /"}, "GATES_PR_NUMBER must be a pull request number"),
        ({"GATES_PR_NUMBER": "-3"}, "GATES_PR_NUMBER must be a pull request number"),
        (
            {"GATES_PR_NUMBER": "3", "GITHUB_TOKEN": "t", "GITHUB_REPOSITORY": "not a repo"},
            "GITHUB_REPOSITORY must be owner/name",
        ),
    ],
)
def test_bad_environment_exits_2(
    write_pipeline: Callable[..., Path], tmp_path: Path, env: dict[str, str], needle: str
) -> None:
    proc = gates_env(["run", str(write_pipeline(MINIMAL)), "--artifacts", str(tmp_path / "art")], env)
    assert proc.returncode == 2 and needle in proc.stderr, proc.stderr
    assert "internal error" not in proc.stderr and not (tmp_path / "art").exists()


def test_unwritable_output_exits_2(write_pipeline: Callable[..., Path], tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    proc = gates(["run", str(write_pipeline(MINIMAL)), "--output", str(blocker / "out")])
    assert proc.returncode == 2 and "--output" in proc.stderr and "cannot write there" in proc.stderr, proc.stderr


def test_nul_in_the_pipeline_path_exits_2() -> None:
    from gates.cli.main import main

    with pytest.raises(SystemExit) as info:
        main(["run", "pipelines/a\0b.yaml"])
    assert info.value.code == 2


def test_overlong_model_source_exits_2_before_model_work(write_pipeline: Callable[..., Path], tmp_path: Path) -> None:
    path = write_pipeline(MINIMAL.replace("builtin:tiny-llama", "models/" + "m" * 300))
    proc = gates(["run", str(path), "--artifacts", str(tmp_path / "art"), "--output", str(tmp_path / "out")])
    assert proc.returncode == 2 and "model.source" in proc.stderr and "internal error" not in proc.stderr, proc.stderr
    assert "[optimize]" not in proc.stdout


@pytest.mark.skipif(cuda_available(), reason="this machine has CUDA")
def test_cuda_device_without_cuda_refused_naming_the_key(write_pipeline: Callable[..., Path], tmp_path: Path) -> None:
    text = GOOD.format(fmt="int8_sq", backend="torch", suite="golden_prompts/demo.jsonl")
    path = write_pipeline(text.replace("  backend: torch\n", "  backend: torch\n  device: cuda\n"))
    proc = gates(["run", str(path), "--artifacts", str(tmp_path / "art")])
    assert proc.returncode == 3, proc.stderr
    assert "p.yaml:10: engine.device is cuda, but no CUDA device is visible" in proc.stderr
    assert not (tmp_path / "art" / "store").exists()  # refused before any model work


@pytest.mark.skipif(cuda_available(), reason="this machine has CUDA")
def test_torch_fp8_refused_here_before_work(write_pipeline: Callable[..., Path], tmp_path: Path) -> None:
    path = write_pipeline(GOOD.format(fmt="fp8", backend="torch-fp8", suite="golden_prompts/demo.jsonl"))
    proc = gates(["run", str(path), "--artifacts", str(tmp_path / "art")])
    assert proc.returncode == 3, proc.stderr
    assert "torch-fp8' runs FP8 GEMMs (torch._scaled_mm)" in proc.stderr and "no CUDA device" in proc.stderr


@pytest.mark.parametrize(
    ("content", "needle"),
    [(b"", "an empty corpus"), (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "a binary file (NUL bytes)")],
)
def test_bad_drift_corpus_exits_2_naming_file_and_key(
    write_pipeline: Callable[..., Path],
    project: Path,
    no_leaked_servers: None,
    tmp_path: Path,
    content: bytes,
    needle: str,
) -> None:
    """Issue 29: an empty or binary golden.drift_corpus file is refused at preflight, before any model work."""
    corpus = project / "corpus.bin"
    corpus.write_bytes(content)
    body = (
        GOOD.format(fmt="int8_sq", backend="torch", suite="golden_prompts/demo.jsonl")
        + "  drift_corpus: [corpus.bin]\n"
    )
    path = write_pipeline(body)
    art = tmp_path / "art"
    proc = gates(["run", str(path), "--artifacts", str(art), "--output", str(tmp_path / "out")])
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"{corpus}: {needle}" in proc.stderr
    assert f"{path}:" in proc.stderr and "golden.drift_corpus[0]" in proc.stderr
    assert not (art / "models").exists(), "no model was built"
