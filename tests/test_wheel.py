"""The wheel: built from this checkout, installed into a fresh venv, `gates` runs from it.

The dependencies (torch, modelopt, …) are too heavy to install per test, so the fresh venv sees
the running interpreter's site-packages through a path line in a .pth file. Path lines do not run
that directory's own .pth files, so its editable install of gates stays inactive: the test checks
that gates is imported from the wheel.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import time
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def run(*cmd: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    # without PYTHONPATH (and run from a folder without gates/): a checkout would be imported instead of the wheel
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=300, cwd=cwd, env=env)


@pytest.fixture()
def wheel(release_assets: Path) -> Path:
    (path,) = release_assets.glob("gates-*.whl")  # built from this checkout (tests/conftest.py)
    return path


def test_wheel_carries_package_data_and_the_entry_point(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for data in ("gates/py.typed", "gates/models/data/corpus.txt", "gates/report/templates/report.md.j2",
                 "gates/report/templates/report.html.j2", "gates/cli/main.py",
                 "gates/report/report.schema.json"):  # fmt: skip
        assert data in names, data
    for model in ("ensemble", "preprocessing", "postprocessing", "tensorrt_llm"):  # TensorRT-LLM's templates
        assert f"gates/triton/templates/trtllm/{model}/config.pbtxt" in names, model
    assert "gates/triton/templates/trtllm/preprocessing/1/model.py" in names
    assert "gates/triton/templates/trtllm/SOURCE" in names and "gates/triton/templates/trtllm/LICENSE" in names
    assert not any(n.startswith("tests/") for n in names)
    meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(meta).decode()
    assert "Requires-Python: <3.13,>=3.11" in text
    assert "Provides-Extra: gpu" in text and "Provides-Extra: dev" in text
    ep = zipfile.ZipFile(wheel).read(meta.replace("METADATA", "entry_points.txt")).decode()
    assert "gates = gates.cli.main:main" in ep


def test_the_wheel_installs_in_a_fresh_venv_and_the_cli_runs_from_it(wheel: Path, tmp_path: Path) -> None:
    start = time.monotonic()
    venv = tmp_path / "venv"
    assert run(sys.executable, "-m", "venv", "--without-pip", venv).returncode == 0
    py = venv / "bin" / "python"
    proc = run(sys.executable, "-m", "pip", "--python", py, "install", "--no-deps", "-q", wheel)
    assert proc.returncode == 0, proc.stderr
    purelib = Path(run(py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
    (purelib / "gates_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    where = run(
        py,
        "-c",
        "import gates.cli.main, gates.report.render as r; print(gates.cli.main.__file__, r.TEMPLATES)",
        cwd=tmp_path,
    )
    assert where.returncode == 0, where.stderr
    module, templates = where.stdout.split()
    assert module.startswith(str(venv)) and Path(templates, "report.md.j2").is_file()  # from the wheel
    helped = run(venv / "bin" / "gates", "--help", cwd=tmp_path)
    assert helped.returncode == 0, helped.stderr
    for command in ("run", "publish", "promote", "rollback", "handle-event", "history"):
        assert command in helped.stdout
    missing = run(venv / "bin" / "gates", "run", tmp_path / "missing.yaml", cwd=tmp_path)
    assert missing.returncode == 2, missing.stdout + missing.stderr  # bad input, as documented
    assert time.monotonic() - start < 120
