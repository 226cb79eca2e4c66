"""action.yml: its inputs/outputs against the workflows and README that use it, and its run step in bash."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def action() -> dict[str, Any]:
    return dict(yaml.safe_load((REPO / "action.yml").read_text()))


def workflow_uses_of_action() -> list[dict[str, Any]]:
    """Every step of .github/workflows that runs this repository's action (``uses: ./``)."""
    steps = []
    for path in sorted((REPO / ".github" / "workflows").glob("*.yml")):
        for job in yaml.safe_load(path.read_text())["jobs"].values():
            steps += [s for s in job.get("steps", []) if s.get("uses") == "./"]
    return steps


def readme_snippet() -> dict[str, Any]:
    """The consumer workflow the README shows under "Use gates in your repository"."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Use gates in your repository") :]
    block = re.search(r"```yaml\n(.*?)```", section, flags=re.S)
    assert block, "the README section shows the workflow in a ```yaml block"
    return dict(yaml.safe_load(block.group(1)))


def test_action_is_composite_with_the_documented_interface() -> None:
    act = action()
    assert act["runs"]["using"] == "composite"
    assert act["inputs"]["pipelines"]["required"] is True
    assert {"pipelines", "ledger-url", "github-token", "upload-report"} <= set(act["inputs"])
    assert {"verdict", "report-path"} <= set(act["outputs"])
    steps = act["runs"]["steps"]
    ids = {s["id"] for s in steps if "id" in s}
    for name, out in act["outputs"].items():  # every output is read from a step that exists and writes it
        (ref,) = EXPR.findall(out["value"])
        step_id, key = re.fullmatch(r"steps\.([\w-]+)\.outputs\.(\w+)", ref).groups()  # type: ignore[union-attr]
        assert step_id in ids, name
        script = next(s["run"] for s in steps if s.get("id") == step_id)
        assert f'echo "{key}=' in script, f"step {step_id} never writes {key}"
    for step in steps:
        for expr in EXPR.findall(yaml.safe_dump(step)):  # every inputs.X it reads is declared
            for used in re.findall(r"inputs\.([\w-]+)", expr):
                assert used in act["inputs"], used
        if "run" in step:
            assert step["shell"] == "bash"
            # inputs reach scripts through env: ${{ }} inside a script is a script-injection hole
            assert "${{" not in step["run"], step.get("name")
        else:
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", step["uses"]), step["uses"]
    upload = next(s for s in steps if "upload-artifact" in s.get("uses", ""))
    assert "report.html" in upload["with"]["path"] and "always()" in upload["if"]


@pytest.mark.parametrize("source", ["workflow", "readme"])
def test_callers_pass_only_declared_inputs_and_every_required_one(source: str) -> None:
    inputs = action()["inputs"]
    required = {k for k, v in inputs.items() if v.get("required")}
    if source == "workflow":
        callers = [s.get("with", {}) for s in workflow_uses_of_action()]
        assert callers, ".github/workflows/gates.yml runs the gate through `uses: ./`"
    else:
        snippet = readme_snippet()
        steps = [s for job in snippet["jobs"].values() for s in job["steps"]]
        callers = [s.get("with", {}) for s in steps if re.fullmatch(r"[\w.-]+/gates@\S+", s.get("uses", ""))]
        assert len(callers) == 1
        assert sum(len(s) if isinstance(s, dict) else 1 for s in steps) <= 5  # the "five lines" of steps
    for given in callers:
        assert set(given) <= set(inputs), set(given) - set(inputs)
        assert required <= set(given)


def test_the_gate_job_runs_on_the_labels_the_runner_scale_sets_register() -> None:
    wf = yaml.safe_load((REPO / ".github" / "workflows" / "gates.yml").read_text())
    gate = wf["jobs"]["gate"]
    assert gate["runs-on"][:2] == ["self-hosted", "gpu"]
    default_archs = re.search(r"vars\.GATES_GPU_ARCHS \|\| '(.*?)'", gate["strategy"]["matrix"]["arch"])
    assert default_archs
    archs = set(yaml.safe_load(default_archs.group(1)))
    values = {p.stem.removeprefix("values-") for p in (REPO / "deploy" / "arc").glob("values-*.yaml")}
    assert archs <= values, "every default arch has a runner scale set"


FAKE_GATES = """#!/usr/bin/env bash
# records what gates was given and exits as the pipeline's name says (demo-1.yaml exits 1)
[ "$1 $2 $4" = "run --output --" ] || { echo "unexpected argv: $*" >&2; exit 99; }
echo "$5|$3|${GATES_LEDGER:-}|${GATES_EPHEMERAL_RUNNER:-}|$GATES_REPORT_URL|${GITHUB_OUTPUT}|${GATES_ARTIFACTS:-}" \
  >> "$CALLS"
mkdir -p "$3" && echo '<html>' > "$3/report.html"
[ -n "${NO_REPORT:-}" ] || echo '{}' > "$3/report.json"
name=$(basename -- "$5"); code=${name##*-}; exit "${code%.yaml}"
"""


def run_step(tmp_path: Path, pipelines: str, **env: str) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    script = next(s["run"] for s in action()["runs"]["steps"] if s.get("id") == "run")
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    (bindir / "gates").write_text(FAKE_GATES)
    (bindir / "gates").chmod(stat.S_IRWXU)
    out = tmp_path / "github_output"
    out.write_text("")
    base = {
        "PATH": f"{bindir}:{os.environ['PATH']}",
        "CALLS": str(tmp_path / "calls"),
        "GITHUB_OUTPUT": str(out),
        "RUNNER_TEMP": str(tmp_path),
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "o/r",
        "GITHUB_RUN_ID": "42",
        "INPUT_PIPELINES": pipelines,
        "INPUT_LEDGER_URL": "",
    }
    argv = ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script]  # as Actions runs a bash step
    proc = subprocess.run(argv, cwd=tmp_path, env={**base, **env}, capture_output=True, text=True, timeout=60)
    outputs = dict(line.split("=", 1) for line in out.read_text().splitlines())
    return proc, outputs


@pytest.mark.parametrize(
    ("names", "verdict", "code"),
    [(["a-0"], "PASS", "0"), (["a-0", "b-1", "c-0"], "FAIL", "1"), (["a-3", "b-0"], "INCONCLUSIVE", "3"),
     (["a-1", "b-2"], "FAIL", "2")],
)  # fmt: skip
def test_run_step_combines_pipelines_into_one_verdict(
    tmp_path: Path, names: list[str], verdict: str, code: str
) -> None:
    (tmp_path / "pipelines").mkdir()
    for n in names:
        (tmp_path / "pipelines" / f"{n}.yaml").write_text("")
    proc, outputs = run_step(tmp_path, "pipelines/*.yaml")  # a glob, as the README shows
    assert proc.returncode == 0, proc.stderr + proc.stdout  # the last step fails the job, after the upload
    assert outputs == {"verdict": verdict, "report_path": str(tmp_path / "gates-reports"), "exit_code": code}
    calls = [c.split("|") for c in (tmp_path / "calls").read_text().splitlines()]
    assert [c[0] for c in calls] == [f"pipelines/{n}.yaml" for n in sorted(names)]
    assert all(c[1] == str(tmp_path / "gates-reports" / Path(c[0]).stem) for c in calls)
    assert all(c[5] == "/dev/null" for c in calls)  # gates' own step outputs do not clash with the combined ones
    assert calls[0][4] == "https://github.com/o/r/actions/runs/42#artifacts"
    assert all((tmp_path / "gates-reports" / n / "report.html").is_file() for n in names)


def test_run_step_masks_the_ledger_url_and_marks_hosted_runners_ephemeral(tmp_path: Path) -> None:
    (tmp_path / "p-0.yaml").write_text("")
    url = "postgresql://gates:s3cret@db:5432/gates"
    proc, outputs = run_step(tmp_path, "p-0.yaml", INPUT_LEDGER_URL=url, RUNNER_ENVIRONMENT="github-hosted")
    assert outputs["verdict"] == "PASS"
    assert proc.stdout.splitlines() == [f"::add-mask::{url}"]  # the only place it is written, and hidden
    (call,) = [c.split("|") for c in (tmp_path / "calls").read_text().splitlines()]
    assert call[2] == url and call[3] == "1"


def test_run_step_without_pipelines_is_bad_input(tmp_path: Path) -> None:
    proc, outputs = run_step(tmp_path, "  ")
    assert outputs["exit_code"] == "2" and outputs["verdict"] == "INCONCLUSIVE"
    assert "::error title=gates::no pipeline config given" in proc.stdout


def test_a_pipeline_file_named_like_an_option_is_gated_not_parsed_as_one(tmp_path: Path) -> None:
    """`-hoevil.yaml` matched by a glob: with the real CLI it must be read as a config (and refused
    here, as it is not one), never taken as `-h` (help, exit 0, PASS with nothing gated)."""
    (tmp_path / "-hoevil.yaml").write_text("not: [a pipeline\n")
    real = Path(sys.executable).parent / "gates"
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "gates").write_text(f'#!/usr/bin/env bash\nexec "{real}" "$@"\n')
    (bindir / "gates").chmod(stat.S_IRWXU)
    script = next(s["run"] for s in action()["runs"]["steps"] if s.get("id") == "run")
    out = tmp_path / "github_output"
    out.write_text("")
    env = {
        "PATH": f"{bindir}:{os.environ['PATH']}",
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        "HOME": str(tmp_path),
        "GITHUB_OUTPUT": str(out),
        "RUNNER_TEMP": str(tmp_path),
        "INPUT_PIPELINES": "*.yaml",
        "INPUT_LEDGER_URL": "",
        "GATES_LEDGER": str(tmp_path / "ledger.sqlite"),
    }
    argv = ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script]
    proc = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    outputs = dict(line.split("=", 1) for line in out.read_text().splitlines())
    assert outputs["verdict"] != "PASS", proc.stdout + proc.stderr
    assert outputs["exit_code"] == "2", proc.stdout + proc.stderr
    assert "-hoevil.yaml" in proc.stderr and "Usage:" not in proc.stdout


def test_an_exit_0_without_a_report_is_not_a_pass(tmp_path: Path) -> None:
    (tmp_path / "p-0.yaml").write_text("")
    proc, outputs = run_step(tmp_path, "p-0.yaml", NO_REPORT="1")
    assert outputs["verdict"] == "INCONCLUSIVE" and outputs["exit_code"] == "3"
    assert "without writing a report" in proc.stdout


def test_the_artifact_store_defaults_outside_the_workspace(tmp_path: Path) -> None:
    """Issue 31: actions/checkout (clean: true) wiped a store, and the SQLite ledger in it, in the workspace."""
    (tmp_path / "p-0.yaml").write_text("")
    home = tmp_path / "home"
    run_step(tmp_path, "p-0.yaml", HOME=str(home), GITHUB_WORKSPACE=str(tmp_path))
    (call,) = [c.split("|") for c in (tmp_path / "calls").read_text().splitlines()]
    assert call[6] == f"{home}/.cache/gates/artifacts" and call[2] == ""  # gates puts its ledger there
    (tmp_path / "calls").unlink()
    run_step(tmp_path, "p-0.yaml", GATES_ARTIFACTS="/srv/gates")
    assert (tmp_path / "calls").read_text().split("|")[6].strip() == "/srv/gates"


def test_the_action_installs_into_its_own_venv_with_the_constraints() -> None:
    install = next(s["run"] for s in action()["runs"]["steps"] if s.get("name") == "Install gates")
    assert 'python3 -m venv "$venv"' in install and '"$venv/bin/python" -m pip install' in install
    assert '-c "${INPUT_GATES_CONSTRAINTS:-$GATES_ACTION_PATH/requirements/constraints.txt}"' in install
    assert "python3 -m pip install" not in install  # never the system Python
    assert (REPO / "requirements" / "constraints.txt").is_file()


@pytest.mark.parametrize("package", ["", "https://example.test/v0.1.0/gates-0.1.0-py3-none-any.whl"])
def test_the_install_step_installs_the_given_wheel_with_its_constraints(tmp_path: Path, package: str) -> None:
    """Issue 31: the Action installs the released wheel with the release's constraints, into its
    own venv; without a wheel, its own checkout with the repository's constraints."""
    install = next(s["run"] for s in action()["runs"]["steps"] if s.get("name") == "Install gates")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls"
    # python3 -m venv DIR writes DIR/bin/python, which records the pip calls; gates then exists
    (bin_dir / "python3").write_text(
        "#!/bin/bash\n"
        'mkdir -p "$3/bin"\n'
        f'printf \'#!/bin/bash\\necho "$@" >> {log}\\nprintf "#!/bin/bash\\\\n" > "$(dirname "$0")/gates"\\n'
        'chmod +x "$(dirname "$0")/gates"\\n\' > "$3/bin/python"\n'
        'chmod +x "$3/bin/python"\n'
    )
    (bin_dir / "python3").chmod(0o755)
    constraints = "https://example.test/v0.1.0/constraints.txt" if package else ""
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "HOME": str(tmp_path / "home"),
        "INPUT_INSTALL": "auto",
        "INPUT_GATES_PACKAGE": package,
        "INPUT_GATES_CONSTRAINTS": constraints,
        "GATES_ACTION_PATH": "/action",
        "GITHUB_PATH": str(tmp_path / "github_path"),
    }
    proc = subprocess.run(["bash", "-e", "-c", install], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    calls = log.read_text().splitlines()
    want = f"-c {constraints} {package}" if package else "-c /action/requirements/constraints.txt /action"
    assert calls[-1] == f"-m pip install --quiet {want}"
    assert (tmp_path / "github_path").read_text().strip() == f"{tmp_path}/home/.cache/gates-venv/bin"
