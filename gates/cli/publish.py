"""``gates publish RUN_DIR``: post (or re-post) a run's report on its PR."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from gates.cli.common import default_artifacts, ledger_options, open_ledger
from gates.config.schema import PIPELINE_NAME
from gates.errors import BadInputError
from gates.github.client import GitHubTarget
from gates.github.publish import publish_report
from gates.judge.verdict import FAIL, INCONCLUSIVE, PASS

VERDICTS = (PASS, FAIL, INCONCLUSIVE)


@click.command("publish")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--artifacts", type=click.Path(file_okay=False, path_type=Path), default=None)
@ledger_options
def command(run_dir: Path, artifacts: Path | None, ledger_url: str, actor: str) -> None:
    """Post RUN_DIR's report.md as the sticky PR comment and set the commit status/check run.

    Target from the environment: GITHUB_TOKEN (or GATES_GITHUB_TOKEN), GITHUB_REPOSITORY,
    GATES_PR_NUMBER, GATES_COMMIT_SHA, GITHUB_API_URL, GATES_GITHUB_CHECK_RUNS=1.
    Gate runs an earlier command could not record (a busy ledger) are recorded first.
    """
    del actor
    open_ledger(ledger_url, artifacts or default_artifacts()).close()  # replays the journal
    try:
        report = json.loads((run_dir / "report.json").read_text())
        markdown = (run_dir / "report.md").read_text()
    except (OSError, ValueError, KeyError) as exc:
        raise BadInputError(f"{run_dir}: not a readable gates run directory: {exc}") from exc
    pipeline, verdict, reason = _fields(run_dir / "report.json", report)  # before anything reaches GitHub
    target = GitHubTarget.from_env(os.environ)
    if target is None:
        raise BadInputError("no GitHub target: set GITHUB_TOKEN, GITHUB_REPOSITORY and GATES_PR_NUMBER")
    url = publish_report(target, pipeline, markdown, verdict, reason)
    click.echo(f"posted: {url}")


def _fields(path: Path, report: object) -> tuple[str, str, str]:
    """pipeline, verdict and reason of a report.json, each checked: a verdict gates never gives is refused."""
    if not isinstance(report, dict):
        raise BadInputError(f"{path}: not a gates report: a JSON object expected")
    for key in ("pipeline", "verdict", "reason"):
        if not isinstance(report.get(key), str):
            raise BadInputError(
                f"{path}: not a gates report: key {key!r} must be a string, got {report.get(key)!r:.60}"
            )
    if report["verdict"] not in VERDICTS:
        raise BadInputError(
            f"{path}: key 'verdict' is {report['verdict']!r:.60}; gates gives only {', '.join(VERDICTS)}"
        )
    if not PIPELINE_NAME.fullmatch(report["pipeline"]):
        raise BadInputError(f"{path}: key 'pipeline' is {report['pipeline']!r:.60}, not a pipeline name")
    return report["pipeline"], report["verdict"], report["reason"]
