"""A small stand-in for GitHub Actions' runner, enough to run a consumer's workflow files here.

It reads a consumer workflow (``on:``, jobs calling a reusable workflow by ``uses:``), resolves
``OWNER/gates/.github/workflows/X.yml@TAG`` to this checkout's file, and runs that workflow's jobs
as GitHub does: ``needs`` in order, ``if:`` and ``${{ }}`` evaluated over the github / inputs /
secrets / matrix / needs / steps / runner contexts, a matrix expanded, each ``run:`` step in
``bash -e`` with the job's and the step's env, ``$GITHUB_OUTPUT`` / ``$GITHUB_PATH`` honoured, and
the three actions these workflows use played by their effect (checkout: a clone of the consumer's
repository at the ref; setup-python: the hosted runner's python on PATH; upload-artifact: the
files it would upload, recorded); the release's download URLs given as inputs are served from local
files (``downloads``: there is no network here). What it does not do: containers, services, composite actions'
own steps (tests/test_action.py runs those), concurrency, and the GitHub-side permissions.
"""

from __future__ import annotations

import dataclasses
import glob
import itertools
import json
import os
import re
import subprocess
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}", flags=re.S)
REUSABLE = re.compile(r"OWNER/gates/\.github/workflows/([\w-]+\.yml)@([\w.-]+)")


class Ctx(dict[str, Any]):
    """A context object: ``a.b`` reads a key, a missing one is null (as in GitHub's expressions)."""

    def __getattr__(self, name: str) -> Any:
        return wrap(self.get(name))


def wrap(value: Any) -> Any:
    return Ctx(value) if isinstance(value, dict) and not isinstance(value, Ctx) else value


def _contains(haystack: Any, needle: Any) -> bool:
    if isinstance(haystack, str):
        return str(needle).lower() in haystack.lower()
    return needle in (haystack or [])


FUNCTIONS = {
    "startsWith": lambda s, p: isinstance(s, str) and s.lower().startswith(str(p).lower()),
    "contains": _contains,
    "fromJSON": json.loads,
    "toJSON": json.dumps,
    "true": True,
    "false": False,
    "null": None,
}


def evaluate(expr: str, ctx: dict[str, Any]) -> Any:
    """One expression (the text inside ``${{ }}``, or an ``if:``) translated to Python and evaluated."""
    py = re.sub(r"&&", " and ", expr)
    py = re.sub(r"\|\|", " or ", py)
    py = re.sub(r"!(?!=)", " not ", py)
    py = re.sub(r"\.([A-Za-z_]\w*(?:-[\w-]+)+)", lambda m: f'["{m.group(1)}"]', py)  # strategy.job-index
    names = {k: wrap(v) for k, v in ctx.items()} | FUNCTIONS
    names |= {"always": lambda: True, "success": lambda: ctx["_ok"], "failure": lambda: not ctx["_ok"]}
    return eval(f"({py.strip()})", {"__builtins__": {}}, names)  # parenthesized: a folded if spans lines


def interpolate(value: Any, ctx: dict[str, Any]) -> Any:
    """``${{ }}`` inside strings (recursively); a string that is one expression keeps its value's type."""
    if isinstance(value, dict):
        return {k: interpolate(v, ctx) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, ctx) for v in value]
    if not isinstance(value, str):
        return value
    whole = EXPR.fullmatch(value.strip())
    if whole:
        return evaluate(whole.group(1), ctx)
    return EXPR.sub(lambda m: "" if (v := evaluate(m.group(1), ctx)) is None else str(v), value)


def condition(spec: dict[str, Any], ctx: dict[str, Any]) -> bool:
    raw = spec.get("if")
    if raw is None:
        return bool(ctx["_ok"])
    text = str(raw).strip()
    match = EXPR.fullmatch(text)
    return bool(evaluate(match.group(1) if match else text, ctx))


@dataclasses.dataclass
class JobResult:
    name: str
    ran: bool
    ok: bool = True
    outputs: dict[str, str] = dataclasses.field(default_factory=dict)
    logs: list[str] = dataclasses.field(default_factory=list)
    uploaded: list[Path] = dataclasses.field(default_factory=list)
    runs_on: Any = None
    exit_code: int = 0

    def log(self) -> str:
        return "\n".join(self.logs)


@dataclasses.dataclass
class Runner:
    """One runner machine: its home, tool cache and temp outlive a job (a persistent self-hosted runner)."""

    root: Path
    origin: Path  # the consumer's repository (what actions/checkout clones)
    env: dict[str, str]  # the runner's environment (HOME, PATH, GITHUB_API_URL, …)
    hosted_python: Path  # the folder setup-python puts first on PATH
    token: str  # what ${{ github.token }} gives
    secrets: dict[str, str] = dataclasses.field(default_factory=dict)
    downloads: dict[str, str] = dataclasses.field(default_factory=dict)  # URL -> a local file (no network here)

    def trigger(self, workflow: Path, event: str, payload: dict[str, Any]) -> list[JobResult]:
        """The consumer's workflow file on one event: its jobs (each a call of a reusable workflow)."""
        wf = yaml.safe_load(workflow.read_text())
        on = wf.get(True, wf.get("on"))  # PyYAML reads the key `on` as True
        if event not in on:
            return []
        filters = on[event] if isinstance(on, dict) and isinstance(on[event], dict) else {}
        if "types" in filters and payload.get("action") not in filters["types"]:
            return []
        if "paths" in filters and "pull_request" in payload:
            pr = payload["pull_request"]
            changed = self.git("diff", "--name-only", f"{pr['base']['sha']}...{pr['head']['sha']}").split()
            if not any(fnmatch(f, pattern) for f in changed for pattern in filters["paths"]):
                return []
        event_path = self.root / f"event-{event}-{len(list(self.root.glob('event-*')))}.json"
        event_path.write_text(json.dumps(payload))
        github = {
            "event": payload,
            "event_name": event,
            "repository": payload["repository"]["full_name"],
            "token": self.token,
            "sha": (payload.get("pull_request") or {}).get("head", {}).get("sha")
            or self.git("rev-parse", "HEAD").strip(),
        }
        results: list[JobResult] = []
        for caller_name, caller in wf["jobs"].items():
            file, tag = REUSABLE.fullmatch(caller["uses"]).groups()  # type: ignore[union-attr]
            ctx = {"github": github, "secrets": self.secrets, "_ok": True}
            called = yaml.safe_load((REPO / ".github" / "workflows" / file).read_text())
            declared = called[True]["workflow_call"]
            inputs = {k: v.get("default", "") for k, v in declared.get("inputs", {}).items()}
            given = {k: self.downloads.get(v, v) for k, v in interpolate(caller.get("with", {}), ctx).items()}
            assert set(given) <= set(inputs), f"{caller_name}: undeclared inputs {set(given) - set(inputs)}"
            missing = {k for k, v in declared.get("inputs", {}).items() if v.get("required") and k not in given}
            assert not missing, f"{caller_name}: required inputs missing: {missing}"
            inputs |= given
            secrets = {k: interpolate(v, ctx) or "" for k, v in (caller.get("secrets") or {}).items()}
            results += self.run_workflow(called, {**ctx, "inputs": inputs, "secrets": secrets}, event, event_path, tag)
        return results

    def run_workflow(
        self, wf: dict[str, Any], ctx: dict[str, Any], event: str, event_path: Path, tag: str
    ) -> list[JobResult]:
        done: dict[str, list[JobResult]] = {}
        pending = dict(wf["jobs"])
        while pending:
            name, spec = next((n, s) for n, s in pending.items() if set(_needs(s)) <= set(done))
            del pending[name]
            needs = {n: {"outputs": done[n][0].outputs, "result": _result(done[n])} for n in _needs(spec)}
            ok = all(r.ran and r.ok for n in _needs(spec) for r in done[n])  # a skipped need skips this job
            jctx = {**ctx, "needs": needs, "_ok": ok}
            runs = condition(spec, jctx) if "always()" in str(spec.get("if")) else ok and condition(spec, jctx)
            if not runs:
                done[name] = [JobResult(f"{name}-0", ran=False)]
                continue
            matrix = interpolate((spec.get("strategy") or {}).get("matrix") or {}, jctx)
            combos = [dict(zip(matrix, values, strict=True)) for values in itertools.product(*matrix.values())]
            done[name] = [
                self.run_job(
                    f"{name}-{i}", spec, {**jctx, "matrix": m, "strategy": {"job-index": i}}, event, event_path
                )
                for i, m in enumerate(combos or [{}])
            ]
        return [r for rs in done.values() for r in rs]

    def run_job(self, name: str, spec: dict[str, Any], ctx: dict[str, Any], event: str, event_path: Path) -> JobResult:
        result = JobResult(name, ran=True, runs_on=interpolate(spec["runs-on"], ctx))
        workspace = self.root / "work" / name
        temp = self.root / "temp" / name
        temp.mkdir(parents=True, exist_ok=True)
        ctx = {**ctx, "runner": {"temp": str(temp)}, "steps": {}}
        path = self.env["PATH"]
        env = {**self.env, "GITHUB_EVENT_NAME": event, "GITHUB_EVENT_PATH": str(event_path)}
        env |= {"GITHUB_WORKSPACE": str(workspace), "RUNNER_TEMP": str(temp)}
        env |= {"GITHUB_REPOSITORY": ctx["github"]["repository"], "GITHUB_SHA": ctx["github"]["sha"]}
        env |= {k: str(v) for k, v in interpolate(spec.get("env") or {}, ctx).items()}
        for index, step in enumerate(spec["steps"]):
            ctx["_ok"] = result.ok
            if not condition(step, ctx):
                continue
            uses = str(step.get("uses", ""))
            given = interpolate(step.get("with") or {}, ctx)
            if uses.startswith("actions/checkout@"):
                ref = given.get("ref") or ctx["github"]["sha"]  # the event's commit (a PR's head, not its merge)
                if not workspace.exists():
                    subprocess.run(["git", "clone", "-q", str(self.origin), str(workspace)], check=True)
                subprocess.run(["git", "-C", str(workspace), "checkout", "-q", ref], check=True)
            elif uses.startswith("actions/setup-python@"):
                path = f"{self.hosted_python}:{path}"
            elif uses.startswith("actions/upload-artifact@"):
                result.uploaded += [Path(p) for line in given["path"].split() for p in glob.glob(line)]
            elif "run" in step:
                files = {k: temp / f"{k.lower()}-{index}" for k in ("GITHUB_OUTPUT", "GITHUB_PATH", "GITHUB_ENV")}
                for f in files.values():
                    f.write_text("")
                step_env = {k: str(v) for k, v in interpolate(step.get("env") or {}, ctx).items()}
                proc = subprocess.run(
                    ["bash", "--noprofile", "--norc", "-e", "-c", step["run"]],
                    cwd=workspace, env={**env, "PATH": path, **{k: str(v) for k, v in files.items()}, **step_env},
                    capture_output=True, text=True, timeout=900,
                )  # fmt: skip
                result.logs.append(f"$ {step.get('name', step.get('id', index))} -> {proc.returncode}")
                result.logs += [proc.stdout, proc.stderr]
                outputs = dict(
                    line.split("=", 1) for line in files["GITHUB_OUTPUT"].read_text().splitlines() if "=" in line
                )
                if "id" in step:
                    ctx["steps"][step["id"]] = {"outputs": outputs}
                for added in files["GITHUB_PATH"].read_text().splitlines():
                    path = f"{added}:{path}"
                if proc.returncode != 0:
                    result.ok, result.exit_code = False, proc.returncode
            else:
                raise AssertionError(f"{name}: no stand-in for step {uses!r}")
        ctx["_ok"] = result.ok
        result.outputs = {k: str(interpolate(v, ctx)) for k, v in (spec.get("outputs") or {}).items()}
        return result

    def git(self, *args: str) -> str:
        return subprocess.run(["git", "-C", str(self.origin), *args], capture_output=True, text=True, check=True).stdout


def _needs(spec: dict[str, Any]) -> list[str]:
    needs = spec.get("needs") or []
    return [needs] if isinstance(needs, str) else list(needs)


def _result(results: list[JobResult]) -> str:
    if not any(r.ran for r in results):
        return "skipped"
    return "success" if all(r.ok for r in results) else "failure"


def runner_env(home: Path, tool_cache: Path, path: str, github_api: str) -> dict[str, str]:
    """What a self-hosted runner's process environment holds (and nothing of this test process)."""
    keep = {k: v for k, v in os.environ.items() if k in ("LANG", "LC_ALL", "TZ", "USER", "LOGNAME", "TMPDIR")}
    return keep | {
        "HOME": str(home),
        "PATH": path,
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "RUNNER_ENVIRONMENT": "self-hosted",
        "RUNNER_TOOL_CACHE": str(tool_cache),
        "GITHUB_API_URL": github_api,
        "GITHUB_SERVER_URL": "https://github.example",
        "GITHUB_RUN_ID": "1",
    }
