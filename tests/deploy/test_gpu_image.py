"""The GPU image installs gates without replacing the base image's torch, transformers or
TensorRT-LLM (issue 31 item 3), checked offline against the base's published package list
(docker/gpu-base-packages.txt): every pin pip resolves in the image build that names a package of
the base is met by the base's version, so pip keeps it; the Dockerfile installs that way.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path
from types import ModuleType

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.deploy.test_dockerfiles import instructions, resolved_froms

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"


def tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_constraints", DOCKER / "gpu_constraints.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def base() -> dict[str, Version]:
    out = {}
    for line in (DOCKER / "gpu-base-packages.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            out[canonicalize_name(name)] = Version(version)
    return out


def base_python() -> str:
    found = re.search(r"^# python (\d+\.\d+\.\d+)$", (DOCKER / "gpu-base-packages.txt").read_text(), flags=re.M)
    assert found, "gpu-base-packages.txt states the image's Python"
    return found.group(1)


def image_environment() -> dict[str, str]:
    """Markers as the image's Python evaluates them."""
    python = base_python()
    env = default_environment()
    env |= {"python_version": python.rsplit(".", 1)[0], "python_full_version": python, "sys_platform": "linux"}
    env |= {"platform_system": "Linux", "platform_machine": "x86_64", "implementation_name": "cpython"}
    return env


def satisfied(req: Requirement, version: Version) -> bool:
    # an installed pre-release (NVIDIA's torch 2.9.0a0+…) is kept by pip when it is in range
    return SpecifierSet(str(req.specifier)).contains(version, prereleases=True)


def test_the_base_list_states_its_source_and_the_dockerfile_uses_that_tag() -> None:
    text = (DOCKER / "gpu-base-packages.txt").read_text()
    tag = re.search(r"tritonserver:([\w.-]+)", text)
    assert tag and f"nvcr.io/nvidia/tritonserver:{tag.group(1)}" == resolved_froms(DOCKER / "gpu.Dockerfile")[-1]
    assert "https://docs.nvidia.com/" in text and "Not published there" in text
    assert {"torch", "tensorrt-llm"} <= set(base())


def test_the_generated_requirements_and_constraints_are_current() -> None:
    requirements, constraints = tool().generate()
    assert (DOCKER / "gpu-requirements.txt").read_text() == requirements, "python docker/gpu_constraints.py generate"
    assert (DOCKER / "gpu-constraints.txt").read_text() == constraints, "python docker/gpu_constraints.py generate"


def test_every_pin_the_image_build_resolves_keeps_the_base_packages() -> None:
    """What pip sees in the build: docker/gpu-requirements.txt under docker/gpu-constraints.txt, and
    what each of those distributions requires in turn (their metadata, installed here). Every one
    that names a base package must accept the base's version, and none is installed over it."""
    provided, env = base(), image_environment()
    lines = [ln for ln in (DOCKER / "gpu-requirements.txt").read_text().splitlines() if ln and ln[0] != "#"]
    reqs = [Requirement(ln) for ln in lines]
    assert not [r.name for r in reqs if canonicalize_name(r.name) in provided]  # never asked to install them
    pins = [Requirement(ln) for ln in (DOCKER / "gpu-constraints.txt").read_text().splitlines() if ln[:1] != "#"]
    checked, failures = 0, []
    for req in pins:
        name = canonicalize_name(req.name)
        if name in provided:
            checked += 1
            if not satisfied(req, provided[name]):
                failures.append(f"constraint {req} vs the image's {provided[name]}")
    for req in reqs:  # their own requirements (as installed here, at the tested versions)
        for dep in metadata.requires(req.name) or []:
            sub = Requirement(dep)
            name = canonicalize_name(sub.name)
            if name in provided and (sub.marker is None or sub.marker.evaluate(env | {"extra": ""})):
                checked += 1
                if not satisfied(sub, provided[name]):
                    failures.append(f"{req.name} requires {sub} vs the image's {provided[name]}")
    assert not failures, failures
    assert checked >= 4  # the base's own pins, and Model Optimizer's and accelerate's torch


def test_gates_own_pins_that_the_image_does_not_meet_are_exactly_the_known_one() -> None:
    """gates is installed --no-deps: its own metadata pins the CPU torch wheel of the CPU machines
    (torch==2.13.0, "an unpinned torch pulls CUDA"); the image keeps its CUDA torch instead. Any
    other conflict with the base fails here."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert SpecifierSet(project["requires-python"]).contains(base_python())
    provided = base()
    conflicts = set()
    for raw in [*project["dependencies"], *project["optional-dependencies"]["gpu"]]:
        req = Requirement(raw.split("#", 1)[0])
        name = canonicalize_name(req.name)
        if name in provided and not satisfied(req, provided[name]):
            conflicts.add(str(req))
    assert conflicts == {"torch==2.13.0"}, conflicts


def test_the_dockerfile_installs_gates_without_its_dependencies_then_the_rest_under_the_image_pins() -> None:
    runs = [a for i, a in instructions(DOCKER / "gpu.Dockerfile") if i == "RUN"]
    [install] = [r for r in runs if "gpu-requirements.txt" in r]
    steps = [s.strip() for s in install.split("&&")]
    assert steps[0] == "python3 -m pip freeze --all > /opt/gates/image-packages.txt"  # before anything is added
    merge = "python3 docker/gpu_constraints.py merge /opt/gates/image-packages.txt docker/gpu-constraints.txt"
    assert steps[1] == f"{merge} > /opt/gates/constraints.txt"
    assert steps[2] == "python3 -m pip install --no-deps ."
    assert steps[3] == "python3 -m pip install -c /opt/gates/constraints.txt -r docker/gpu-requirements.txt"
    assert all("--no-deps" in s for s in steps[4:] if "pip install" in s)
    assert not any(re.search(r"pip install .*(\"\.\[gpu\]\"|torch|transformers|tensorrt)", r) for r in runs)


def test_merge_keeps_every_image_version_and_adds_the_tested_pins_of_the_rest() -> None:
    image = "torch==2.9.0a0+145a3a7bda.nv25.10\nTransformers==4.56.0\nnumpy==1.26.4\nfoo @ file:///x\n"
    tested = "# tested\ntransformers==5.14.1\nclick==8.5.1\nnumpy==1.26.4\n"
    merged = tool().merge(image, tested).splitlines()
    assert merged == ["torch==2.9.0a0+145a3a7bda.nv25.10", "Transformers==4.56.0", "numpy==1.26.4", "click==8.5.1"]
