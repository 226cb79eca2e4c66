"""The router's inputs from a checkout, and the PR gate's job matrix.

Light on purpose (pydantic and PyYAML only): the ``plan`` job of ``gates.yml`` runs it on a
hosted runner, before anything reaches a self-hosted GPU runner::

    python -m gates.events.plan --name pull_request --payload "$GITHUB_EVENT_PATH"

prints ``{"pipeline": [...]}``, the pipelines the event's ``run`` actions name, as JSON.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from gates.config import load_pipeline
from gates.errors import BadInputError, ConfigError, GatesError, SubprocessError
from gates.events.routing import ActionKind, Routed, diff_request, route


def pipeline_files(repo_dir: Path) -> list[str]:
    return sorted(p.relative_to(repo_dir).as_posix() for p in (repo_dir / "pipelines").glob("*.yaml"))


def data_index(repo_dir: Path) -> dict[str, list[str]]:
    """Data file (repo-relative) -> the pipeline files that read it. Broken configs index nothing."""
    index: dict[str, list[str]] = {}
    root = repo_dir.resolve()
    for rel in pipeline_files(repo_dir):
        try:
            pf = load_pipeline(repo_dir / rel)
        except ConfigError:
            continue  # a broken pipeline still runs (and fails with its error) when its own file changes
        paths = [pf.resolve(f) for f in pf.config.data_files()]  # each config section names the data it reads
        for task in pf.config.golden.lm_eval:  # what each lm-eval task reads: includes, its Python, its data
            paths += lm_eval_task_files(pf.resolve(task), pf.root)
        paths += model_files(pf.config.model.source, pf.resolve)
        for p in paths:
            path = p.resolve()
            if path.is_relative_to(root):
                pipelines = index.setdefault(path.relative_to(root).as_posix(), [])
                if rel not in pipelines:
                    pipelines.append(rel)
    return index


MAX_MODEL_FILES = 10_000
MAX_TASK_BYTES = 1_000_000
MAX_INCLUDES = 32


def model_files(source: str, resolve: Any) -> list[Path]:
    """A local ``model.source`` (a GGUF file or a checkpoint folder in the repository) is read too."""
    if source.startswith("builtin:"):
        return []
    path = Path(resolve(source))
    if path.is_file():
        return [path]
    if not path.is_dir():
        return []
    out = []
    for f in path.rglob("*"):
        if f.is_file():
            out.append(f)
            if len(out) >= MAX_MODEL_FILES:
                break
    return out


def lm_eval_task_files(task: Path, project_root: Path) -> list[Path]:
    """The files an lm-eval task YAML makes lm-eval read: the YAMLs it includes (relative to its
    folder), the modules of its ``!function`` values (``utils.f`` -> utils.py beside it) and its
    ``dataset_kwargs.data_files`` (read from the working directory, the project root; the task's
    folder is watched too). Unreadable YAML yields only itself: the run reports the error."""
    out: list[Path] = []
    todo, seen = [task], set[Path]()
    while todo and len(seen) < MAX_INCLUDES:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        out.append(current)
        root = _compose(current)
        if root is None:
            continue
        for tag, value in _scalars(root):
            if tag == "!function" and "." in value:
                out.append(current.parent / (value.rsplit(".", 1)[0].replace(".", "/") + ".py"))
        top = _mapping(root)
        for include in _strings(top.get("include")):
            todo.append(current.parent / include)
        for data in _strings(_mapping(top.get("dataset_kwargs")).get("data_files")):
            path = Path(data)
            out += [path] if path.is_absolute() else [project_root / path, current.parent / path]
    return out


def _compose(path: Path) -> yaml.Node | None:
    """The YAML's node graph (aliases stay shared: walking it is linear); None when unreadable."""
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_TASK_BYTES + 1)
        if len(raw) > MAX_TASK_BYTES:
            return None
        return yaml.compose(raw.decode("utf-8"), Loader=yaml.SafeLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError):
        return None


def _scalars(root: yaml.Node) -> Iterator[tuple[str, str]]:
    """(tag, value) of every scalar node, each node once."""
    stack, seen = [root], set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            yield node.tag, str(node.value)
        elif isinstance(node, yaml.SequenceNode):
            stack += node.value
        elif isinstance(node, yaml.MappingNode):
            stack += [n for pair in node.value for n in pair]


def _mapping(node: yaml.Node | None) -> dict[str, yaml.Node]:
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {str(k.value): v for k, v in node.value if isinstance(k, yaml.ScalarNode)}


def _strings(node: yaml.Node | None) -> list[str]:
    """A path, a list of paths, or a mapping of split -> path(s) (``data_files``): the paths."""
    if isinstance(node, yaml.ScalarNode):
        return [str(node.value)] if node.value else []
    if isinstance(node, yaml.SequenceNode):
        return [str(n.value) for n in node.value if isinstance(n, yaml.ScalarNode) and n.value]
    if isinstance(node, yaml.MappingNode):
        return [p for _, v in node.value if not isinstance(v, yaml.MappingNode) for p in _strings(v)]
    return []


def git_changed_files(repo_dir: Path, base: str, head: str) -> list[str]:
    # the router checked both are hex SHAs; --end-of-options keeps any ref from being read as an option
    cmd = ["git", "-C", str(repo_dir), "diff", "--name-only", "--no-renames", "--end-of-options", f"{base}...{head}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:  # never guess which pipelines changed
        raise SubprocessError(
            "cannot list the files this pull request changes (fetch both commits: actions/checkout with "
            "fetch-depth: 0)",
            cmd,
            proc.returncode,
            proc.stdout,
            proc.stderr,
        )
    return [line for line in proc.stdout.splitlines() if line]


def route_event(name: str, payload: Any, repo_dir: Path) -> Routed:
    need = diff_request(name, payload) if isinstance(payload, Mapping) else None
    changed = git_changed_files(repo_dir, need.base, need.head) if need else None
    return route(name, payload, changed, data_index(repo_dir), pipeline_files(repo_dir))


MAX_PAYLOAD = 25 * 1024 * 1024  # GitHub caps webhook payloads at 25 MB


def load_payload(path: Path) -> Any:
    try:
        with path.open("rb") as f:  # bounded: a payload file that never ends is refused, not read
            blob = f.read(MAX_PAYLOAD + 1)
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        raise BadInputError(f"{path}: cannot read the event payload: {exc}") from None
    if len(blob) > MAX_PAYLOAD:
        raise BadInputError(f"{path}: the event payload is larger than GitHub's 25 MB")
    return parse_payload(blob, str(path))


def parse_payload(blob: bytes, where: str) -> Any:
    """JSON of one delivery; anything else (deep nesting included) is BadInputError, never a crash."""
    try:
        return json.loads(blob)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInputError(f"{where}: the event payload is not JSON: {exc}") from None
    except RecursionError:
        raise BadInputError(f"{where}: the event payload is not JSON we accept: nested too deeply") from None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m gates.events.plan", description=__doc__)
    ap.add_argument("--name", required=True)
    ap.add_argument("--payload", required=True, type=Path)
    ap.add_argument("--repo-dir", type=Path, default=Path("."))
    args = ap.parse_args(argv)
    try:
        routed = route_event(args.name, load_payload(args.payload), args.repo_dir)
    except GatesError as exc:
        print(f"gates plan: error: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    pipelines = sorted({a.pipeline for a in routed.actions if a.kind == ActionKind.RUN and a.pipeline})
    print(json.dumps({"pipeline": pipelines}))
    print(f"{args.name}: {routed.reason}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
