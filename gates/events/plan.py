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
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gates.config import load_pipeline
from gates.errors import BadInputError, ConfigError, GatesError, SubprocessError
from gates.events.routing import Routed, diff_request, route


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
        for f in pf.config.data_files():  # each config section names the data it reads
            path = pf.resolve(f).resolve()
            if path.is_relative_to(root):
                index.setdefault(path.relative_to(root).as_posix(), []).append(rel)
    return index


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
    pipelines = sorted({a.pipeline for a in routed.actions if a.kind == "run" and a.pipeline})
    print(json.dumps({"pipeline": pipelines}))
    print(f"{args.name}: {routed.reason}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
