"""``gates publish RUN_DIR``: post (or re-post) a run's report on its PR."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from gates.errors import BadInputError
from gates.github.publish import GitHubTarget, publish_report


@click.command("publish")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
def command(run_dir: Path) -> None:
    """Post RUN_DIR's report.md as the sticky PR comment and set the commit status/check run.

    Target from the environment: GITHUB_TOKEN (or GATES_GITHUB_TOKEN), GITHUB_REPOSITORY,
    GATES_PR_NUMBER, GATES_COMMIT_SHA, GITHUB_API_URL, GATES_GITHUB_CHECK_RUNS=1.
    """
    try:
        report = json.loads((run_dir / "report.json").read_text())
        markdown = (run_dir / "report.md").read_text()
    except (OSError, ValueError) as exc:
        raise BadInputError(f"{run_dir}: not a readable gates run directory: {exc}") from exc
    target = GitHubTarget.from_env(os.environ)
    if target is None:
        raise BadInputError("no GitHub target: set GITHUB_TOKEN, GITHUB_REPOSITORY and GATES_PR_NUMBER")
    url = publish_report(target, report["pipeline"], markdown, report["verdict"], report["reason"])
    click.echo(f"posted: {url}")
