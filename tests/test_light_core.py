"""The light entry points run with only what their jobs install.

The hosted ``plan`` job of ``gates.yml`` installs pydantic and PyYAML and runs the PR planner; the
``--dry-run`` of ``gates handle-event`` needs click on top. Each runs here in an interpreter that
sees exactly those distributions (and what they require), nothing else of the venv: the
workflow's own ``run:`` script is executed, with ``python -m pip install`` checked against the
distributions provided instead of reaching the network.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import yaml

from tests.events.test_handle_event_cli import EXAMPLES, make_repo

REPO = Path(__file__).resolve().parent.parent


def closure(names: list[str]) -> set[str]:
    """The distributions ``names`` need, themselves included (extras and markers that do not apply skipped)."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = re.split(r"[<>=!~\[; ]", todo.pop(), maxsplit=1)[0]
        key = name.lower().replace("_", "-")
        if key in seen:
            continue
        seen.add(key)
        for req in metadata.requires(name) or []:
            if ";" in req and ("extra ==" in req or 'python_version < "3.1' in req):
                continue
            todo.append(req)
    return seen


def isolated_site(names: list[str], into: Path) -> Path:
    """A folder holding links to exactly the top-level modules of ``names`` and their requirements."""
    into.mkdir()
    for dist in closure(names):
        files = metadata.distribution(dist).files or []
        tops = {f.parts[0] for f in files if not f.parts[0].endswith((".dist-info", ".data")) and f.parts[0] != ".."}
        for top in tops:
            src = Path(str(metadata.distribution(dist).locate_file(top)))
            if src.exists() and not (into / top).exists() and not top.endswith(".pth"):
                (into / top).symlink_to(src)
    return into


def python_shim(bin_dir: Path, site: Path, installs: Path) -> dict[str, str]:
    """``python`` on PATH: the real interpreter without site-packages, seeing only ``site`` and the
    checkout; ``python -m pip install …`` records what the job asked for instead of installing."""
    bin_dir.mkdir()
    shim = bin_dir / "python"
    shim.write_text(
        "#!/bin/bash\n"
        f'if [ "$1 $2 $3" = "-m pip install" ]; then shift 3; printf "%s\\n" "$@" >> {installs}; exit 0; fi\n'
        f'exec {sys.executable} -S "$@"\n'
    )
    shim.chmod(shim.stat().st_mode | stat.S_IEXEC)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(PATH=f"{bin_dir}:/usr/bin:/bin", PYTHONPATH=f"{site}:{REPO}", PYTHONNOUSERSITE="1")
    return env


def plan_step() -> dict[str, str]:
    wf = yaml.safe_load((REPO / ".github" / "workflows" / "gates.yml").read_text())
    [step] = [s for s in wf["jobs"]["plan"]["steps"] if s.get("id") == "plan"]
    return dict(step)


def pr_event(tmp_path: Path) -> tuple[Path, Path]:
    repo, base, head = make_repo(tmp_path)
    payload = json.loads((EXAMPLES / "pull_request" / "synchronize.payload.json").read_text())
    payload["pull_request"]["base"]["sha"], payload["pull_request"]["head"]["sha"] = base, head
    (tmp_path / "e.json").write_text(json.dumps(payload))
    return repo, tmp_path / "e.json"


def test_the_hosted_plan_job_runs_with_only_what_it_installs(tmp_path: Path) -> None:
    repo, event = pr_event(tmp_path)
    installs, output = tmp_path / "installs.txt", tmp_path / "github_output"
    requested = re.findall(r'"([A-Za-z_]+)[<>=]', plan_step()["run"].split("\n", 1)[0])
    assert sorted(requested) == ["PyYAML", "pydantic"]
    env = python_shim(tmp_path / "bin", isolated_site(requested, tmp_path / "site"), installs)
    env.update(GITHUB_EVENT_NAME="pull_request", GITHUB_EVENT_PATH=str(event), GITHUB_OUTPUT=str(output))
    proc = subprocess.run(
        ["bash", "-eo", "pipefail", "-c", plan_step()["run"]], cwd=repo, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert installs.read_text().split() == ["--quiet", "pydantic>=2.6", "PyYAML>=6"]
    assert output.read_text().strip() == 'pipelines=["pipelines/int8-cpu.yaml"]'


def test_handle_event_dry_run_needs_only_click_pydantic_and_pyyaml(tmp_path: Path) -> None:
    repo, event = pr_event(tmp_path)
    env = python_shim(
        tmp_path / "bin", isolated_site(["click", "pydantic", "PyYAML"], tmp_path / "site"), tmp_path / "i"
    )
    args = ["-m", "gates.cli", "handle-event", "--name", "pull_request", "--payload", str(event), "--dry-run"]
    proc = subprocess.run(["python", *args], cwd=repo, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "would run pipelines/int8-cpu.yaml PR #2" in proc.stdout


def test_the_isolation_is_real(tmp_path: Path) -> None:
    """The shim must not see the venv: numpy (installed here) cannot be imported through it."""
    env = python_shim(tmp_path / "bin", isolated_site(["pydantic", "PyYAML"], tmp_path / "site"), tmp_path / "i")
    ok = subprocess.run(["python", "-c", "import pydantic, gates.config"], env=env, capture_output=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    proc = subprocess.run(["python", "-c", "import numpy"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "No module named 'numpy'" in proc.stderr


@pytest.mark.parametrize("command", ["--help", "handle-event --help"])
def test_light_commands_import_no_heavy_module(command: str) -> None:
    code = (
        "import sys; from gates.cli.main import cli\n"
        f"try: cli.main(args={command.split()!r}, standalone_mode=False)\nexcept SystemExit: pass\n"
        "print(sorted(m for m in ('torch', 'transformers', 'modelopt', 'numpy', 'scipy') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_the_reusable_plan_job_runs_in_a_consumer_repository_with_the_release_installed(tmp_path: Path) -> None:
    """Issue 31: gates.yml's plan imported gates from its own checkout; a consumer's checkout has none.
    The reusable workflow's plan installs the pinned release without dependencies (the checkout's
    gates stands in for that wheel here) and pydantic and PyYAML, and nothing else."""
    repo, event = pr_event(tmp_path)
    assert not (repo / "gates").exists()
    wf = yaml.safe_load((REPO / ".github" / "workflows" / "gates-pr.yml").read_text())
    [step] = [s for s in wf["jobs"]["plan"]["steps"] if s.get("id") == "plan"]
    installs, output = tmp_path / "installs.txt", tmp_path / "github_output"
    env = python_shim(tmp_path / "bin", isolated_site(["pydantic", "PyYAML"], tmp_path / "site"), installs)
    wheel = "https://github.com/o/gates/releases/download/v0.1.0/gates-0.1.0-py3-none-any.whl"
    env.update(GITHUB_EVENT_NAME="pull_request", GITHUB_EVENT_PATH=str(event), GITHUB_OUTPUT=str(output))
    env.update(GATES_PACKAGE=wheel)
    proc = subprocess.run(
        ["bash", "-eo", "pipefail", "-c", step["run"]], cwd=repo, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert installs.read_text().split() == ["--quiet", "pydantic>=2.6", "PyYAML>=6", "--quiet", "--no-deps", wheel]
    assert output.read_text().strip() == 'pipelines=["pipelines/int8-cpu.yaml"]'
