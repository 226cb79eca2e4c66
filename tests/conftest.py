"""Shared fixtures: the tiny model, a quantized candidate, a pipeline writer, a real Triton."""

from __future__ import annotations

import os
import shutil
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gates.models.placement import cuda_available
from gates.testing import tritonserver_pids

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _ledger_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every gates command a test runs records to a ledger of its own, never to the checkout's."""
    monkeypatch.setenv("GATES_LEDGER", str(tmp_path / "ledger.sqlite"))


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real local PostgreSQL (the ledger's other database), started once per test session."""
    from gates.testing.postgres import find_pg_bin, local_postgres

    if find_pg_bin() is None:
        pytest.skip("PostgreSQL server binaries are not installed here (apt-get install postgresql)")
    with local_postgres(tmp_path_factory.mktemp("pg")) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty ledger on each database."""
    if request.param == "sqlite":
        yield str(tmp_path / "ledger.sqlite")
        return
    import uuid

    import psycopg

    server: str = request.getfixturevalue("postgres_server")
    name = f"l_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield server.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(scope="session")
def release_assets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The release's assets as .github/workflows/release.yml attaches them: the wheel built from this
    checkout (``pip wheel --no-deps``, from a copy: building in place would leave build/ here) and
    requirements/constraints.txt as constraints.txt."""
    import subprocess
    import sys

    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "gates", src / "gates", ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("dist")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(src)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    shutil.copy(REPO / "requirements" / "constraints.txt", out / "constraints.txt")
    return out


@pytest.fixture(scope="session")
def artifacts_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("artifacts")


@pytest.fixture(scope="session")
def tiny_model(artifacts_root: Path) -> Path:
    from gates.models.tiny import ensure_tiny_llama

    return ensure_tiny_llama(artifacts_root)


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    """A project directory with golden_prompts/ copied from the repo and an empty pipelines/."""
    shutil.copytree(REPO / "golden_prompts", tmp_path / "golden_prompts")
    (tmp_path / "pipelines").mkdir()
    return tmp_path


@pytest.fixture()
def write_pipeline(project: Path) -> Callable[..., Path]:
    def write(text: str, name: str = "p.yaml") -> Path:
        path = project / "pipelines" / name
        path.write_text(textwrap.dedent(text).lstrip())
        return path

    return write


@pytest.fixture()
def no_leaked_servers() -> Iterator[None]:
    before = tritonserver_pids()
    yield
    deadline = time.monotonic() + 5  # SIGKILLed processes need a moment to be reaped
    while (leaked := tritonserver_pids() - before) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not leaked, f"tritonserver (or stub) processes left running: {leaked}"


GOLDEN_DIR = Path(__file__).resolve().parent / "golden"


@pytest.fixture()
def golden() -> Callable[[str, str], None]:
    """Compare text a person reads to tests/golden/NAME; GATES_UPDATE_GOLDEN=1 rewrites the file."""

    def check(name: str, actual: str) -> None:
        path = GOLDEN_DIR / name
        if os.environ.get("GATES_UPDATE_GOLDEN") == "1":
            path.write_text(actual)
        assert path.exists(), f"golden file {path} is missing (run with GATES_UPDATE_GOLDEN=1 and review it)"
        assert actual == path.read_text(), f"output differs from {path}"

    return check


@pytest.fixture(scope="session")
def int8_candidate(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    """An INT8-SmoothQuant candidate saved like the optimize stage saves it, plus the in-memory model."""
    from gates.config.schema import QuantizeSection
    from gates.models.loader import load_model
    from gates.optimize.quantize import calibration_batches, quantize, save_quantized
    from gates.quality.golden import load_calibration

    model, tok = load_model(tiny_model)
    section = QuantizeSection(format="int8_sq", calibration="golden_prompts/calibration.jsonl", samples=16)
    texts = load_calibration(REPO / "golden_prompts" / "calibration.jsonl")[:16]
    model = quantize(model, section, calibration_batches(tok, texts, 4, 64))
    out = tmp_path_factory.mktemp("int8_sq")
    save_quantized(model, tok, out)
    return out, model


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``gpu`` need CUDA: skipped, with that reason, where no CUDA device is visible.
    Tests marked ``slow`` (more of what other tests already cover, minutes of it) run where
    ``GATES_SLOW=1`` (CI: .ci/run sets it) and are skipped, with that reason, by a local make test,
    which keeps it under 25 minutes on 2 cores."""
    slow = pytest.mark.skip(reason="slow: runs in CI (.ci/run sets GATES_SLOW=1); set GATES_SLOW=1 to run it here")
    gpu = pytest.mark.skip(reason="needs an NVIDIA GPU with CUDA (none visible here)")
    run_slow, has_gpu = os.environ.get("GATES_SLOW") == "1", cuda_available()
    for item in items:
        if "gpu" in item.keywords and not has_gpu:
            item.add_marker(gpu)
        elif "slow" in item.keywords and not run_slow:
            item.add_marker(slow)
