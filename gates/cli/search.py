"""``gates search PIPELINE.yaml``: the cheapest configuration of the pipeline's ``search:`` space that
passes every gate, and the cost–quality front (gates/search/)."""

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
from gates.github.actions import write_outputs, write_summary
from gates.search.report import publish_search, write_report
from gates.search.run import search_pipeline
from gates.search.space import expand


@click.command("search")
@pipeline_argument
@click.option(
    "--output",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Search directory (default: artifacts/searches/<name>-<hash of the pipeline file>/; "
    "the same file resumes the same search).",
)
@click.option(
    "--artifacts",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Artifact store root (default: $GATES_ARTIFACTS or ./artifacts).",
)
@click.option(
    "--max-minutes",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="This invocation's wall-clock budget instead of search.max_minutes: past it no further gate "
    "run starts (a search run in chunks; started again, it continues where it stopped).",
)
@ledger_options
def command(
    pipeline: str,
    output: Path | None,
    artifacts: Path | None,
    max_minutes: float | None,
    ledger_url: str,
    actor: str,
) -> None:
    """Measure the configurations of PIPELINE's search: section with its own gates and recommend the
    cheapest that passes every gate (PIPELINE: its file, or its name in ./pipelines/).

    Exit 0 a configuration is recommended, 1 none passed, 2 bad input (a bad search space is refused
    before anything is built), 3 infrastructure error."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    pf = load_pipeline(pipeline_file(pipeline))
    expand(pf)  # a bad space: exit 2 now, before the ledger is opened or anything built
    root = writable_dir("--artifacts", artifacts or default_artifacts())
    out = writable_dir("--output", output) if output else None
    ledger = open_ledger(ledger_url, root)
    result = search_pipeline(pf, root, ledger, actor, out, click.echo, dict(os.environ), max_minutes=max_minutes)
    report = write_report(result)
    url = publish_search(result, report, dict(os.environ))
    if url:
        click.echo(f"posted {url}")
    click.echo(f"recommended: {result.recommended or 'none'}")
    if result.recommended_yaml is not None:
        click.echo(f"ready pipeline: {result.recommended_yaml}")
    click.echo(f"report: {report.markdown}")
    write_summary(os.environ, report.markdown.read_text())
    write_outputs(os.environ, {"recommended": result.recommended or "", "report_path": str(report.markdown)})
    sys.exit(int(result.exit_code))
