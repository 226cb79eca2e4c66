"""``gates history [PIPELINE]``: every recorded transition, oldest first, under a header."""

from __future__ import annotations

import os
import time
from pathlib import Path

import click

from gates.cli.common import ledger_options, open_ledger, pipeline_file
from gates.config import load_pipeline
from gates.errors import BadInputError
from gates.ledger.db import is_postgres, redact, require_durable, sqlite_path
from gates.promotion.comments import detail_text, window_cells

HEADER = ("when (UTC)", "pipeline", "action", "from -> to", "by", "details")


@click.command("history")
@click.argument("pipeline", metavar="[PIPELINE]", required=False)
@ledger_options
def command(pipeline: str | None, ledger_url: str, actor: str) -> None:
    """Print the ledger's transitions (gate runs, canary moves, promotions), oldest first.

    PIPELINE is a pipeline file, a name in ./pipelines/, or a name the ledger has records of.
    Exit 2 for a pipeline none of these know. A missing SQLite ledger is reported, never created."""
    del actor
    require_durable(ledger_url, os.environ)  # an ephemeral runner's SQLite file is refused, as by every command
    if not is_postgres(ledger_url) and not Path(sqlite_path(ledger_url)).exists():
        if pipeline is not None:
            _name_of(pipeline, set())  # an unknown pipeline is refused whether or not there is a ledger
        click.echo(f"nothing recorded: there is no ledger at {redact(ledger_url)} (--ledger / $GATES_LEDGER)")
        return
    ledger = open_ledger(ledger_url)
    name = _name_of(pipeline, {row["pipeline"] for row in ledger.history()}) if pipeline else None
    rows = ledger.history(name)
    if not rows:
        click.echo(f"{name}: nothing recorded yet in {ledger.url}" if name else f"nothing recorded yet in {ledger.url}")
        return
    table = [HEADER] + [_row(row) for row in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(HEADER) - 1)]
    for r in table:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1])


def _name_of(arg: str, recorded: set[str]) -> str:
    """The ledger name of PIPELINE: its file's ``name:``, or a name with records (a deleted file's)."""
    try:
        return load_pipeline(pipeline_file(arg)).config.name
    except BadInputError:
        if arg in recorded:
            return arg
        raise


def _row(row: dict[str, object]) -> tuple[str, str, str, str, str, str]:
    at = row["at"]
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(at if isinstance(at, float | int) else 0))
    extra = " ".join(f"{k}={row[k]}" for k in ("weight", "digest", "verdict", "report") if row[k] is not None)
    detail = row["detail"]
    if row["action"] == "analysis_window":  # canary against stable, not the raw figures
        _, window, requests, latency, ttft, shift, decision = window_cells(row)
        figures = f"window {window}: requests {requests}; latency {latency}; TTFT p50 {ttft}; shift {shift}"
        extra = f"{extra} {figures}; {decision}"
    elif isinstance(detail, str) and detail:
        extra = f"{extra} {detail_text(detail)}".strip()
    move = f"{row['from'] or '-'} -> {row['to'] or '-'}"
    return (when, str(row["pipeline"]), str(row["action"]), move, str(row["actor"]), extra)
