"""``gates validate PIPELINE…``: preflight without building or serving, and whether each gate can
reach a verdict with the configured load (``gates.stages.validate``)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from gates.cli.common import default_artifacts, ledger_options, open_ledger, pipeline_file
from gates.config import load_pipeline
from gates.errors import ExitCode, GatesError
from gates.ledger.db import is_postgres, sqlite_path
from gates.search.space import expand


@click.command("validate")
@click.argument("pipelines", metavar="PIPELINE...", nargs=-1, required=True)
@click.option(
    "--artifacts",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Artifact store whose runs/ hold earlier reports (default: $GATES_ARTIFACTS or ./artifacts).",
)
@ledger_options
def command(pipelines: tuple[str, ...], artifacts: Path | None, ledger_url: str, actor: str) -> None:
    """Check each PIPELINE (file, or name in ./pipelines/) as a run's preflight would, and say how
    many requests per arm its load should get and which gates that leaves without a verdict.

    Nothing is built or served; a missing ledger is not created. Exit 0 valid (warnings
    included), 2 bad input, 3 this machine cannot run it (e.g. a GPU-only format)."""
    del actor
    has_ledger = is_postgres(ledger_url) or Path(sqlite_path(ledger_url)).exists()
    ledger = open_ledger(ledger_url, replay=False) if has_ledger else None
    worst = ExitCode.PASS
    for arg in pipelines:  # one bad pipeline does not hide what the others have to say
        try:
            path = pipeline_file(arg)
            pf = load_pipeline(path)  # a config error in well under a second, before the stages are imported
            space = expand(pf) if pf.config.search is not None else None  # a bad search space is bad input too
            from gates.stages.validate import validate_pipeline

            v = validate_pipeline(path, artifacts or default_artifacts(), ledger)
        except GatesError as exc:
            click.echo(f"gates: error: {exc}", err=True)
            worst = max(worst, exc.exit_code)
            continue
        click.echo(f"{v.pipeline.path}: valid ({v.preflight.note}; engine {v.engine} on {v.device})")
        for est in v.estimates:
            click.echo(f"  load, {est.point} point: ~{est.expected} requests per arm expected ({est.rate.source})")
            for gate, n in est.needed.items():
                can = "can reach a verdict" if gate not in est.short else "too few: no verdict expected"
                click.echo(f"    {gate}: needs {n} per arm: {can}")
        if space is not None:
            click.echo(f"  search: {len(space.candidates)} candidates (gates search; docs/search.md)")
        for w in v.warnings:
            click.echo(f"  warning: {w}")
    sys.exit(int(worst))
