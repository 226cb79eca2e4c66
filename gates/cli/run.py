"""``gates run PIPELINE.yaml``: the whole gate on one pipeline config."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from gates.cli.common import (
    default_artifacts,
    ledger_options,
    open_ledger,
    pipeline_argument,
    pipeline_file,
    writable_dir,
)
from gates.config import load_pipeline
from gates.errors import BadInputError
from gates.github.actions import write_outputs, write_summary
from gates.github.client import GitHubTarget
from gates.promotion.gate import gate_commit


@click.command("run")
@pipeline_argument
@click.option(
    "--output",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Run directory (default: artifacts/runs/<run-id>/).",
)
@click.option(
    "--artifacts",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Artifact store root (default: $GATES_ARTIFACTS or ./artifacts).",
)
@ledger_options
def command(pipeline: str, output: Path | None, artifacts: Path | None, ledger_url: str, actor: str) -> None:
    """Optimize, serve, load-test, measure drift and judge one pipeline (PIPELINE: its file, or its
    name in ./pipelines/).

    Exit 0 PASS, 1 FAIL, 2 bad input, 3 infrastructure error or INCONCLUSIVE.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    pf = load_pipeline(pipeline_file(pipeline))

    def progress(line: str) -> None:
        click.echo(line, err=False)

    pr, sha = pr_number(os.environ.get("GATES_PR_NUMBER")), os.environ.get("GATES_COMMIT_SHA") or None
    GitHubTarget.from_env(os.environ)  # a malformed GITHUB_REPOSITORY is refused now, not after the run
    root = writable_dir("--artifacts", artifacts or default_artifacts())
    out = writable_dir("--output", output) if output else None  # refused before any model work
    outcome = gate_commit(pf, root, open_ledger(ledger_url, root), actor, pr, sha, dict(os.environ), progress, out)
    click.echo(f"verdict: {outcome.verdict} — {outcome.reason}")
    click.echo(f"report: {outcome.report_md}")
    if outcome.report_md is not None:
        write_summary(os.environ, outcome.report_md.read_text())
    write_outputs(os.environ, {"verdict": outcome.verdict, "report_path": str(outcome.report_md or "")})
    sys.exit(int(outcome.exit_code))


def pr_number(raw: str | None) -> int | None:
    """GATES_PR_NUMBER: empty for runs outside a PR, else a positive integer."""
    if not raw:
        return None
    if not raw.isascii() or not raw.isdigit() or not 0 < int(raw) < 2**31:
        raise BadInputError(f"GATES_PR_NUMBER must be a pull request number, got {raw[:40]!r}")
    return int(raw)
