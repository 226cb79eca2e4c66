"""``gates history [PIPELINE]``: every recorded transition."""

from __future__ import annotations

import time

import click

from gates.cli.common import ledger_options, open_ledger
from gates.promotion.comments import detail_text, window_cells


@click.command("history")
@click.argument("pipeline", required=False)
@ledger_options
def command(pipeline: str | None, ledger_url: str, actor: str) -> None:
    """Print the ledger's transitions, oldest first."""
    for row in open_ledger(ledger_url).history(pipeline):
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(row["at"]))
        extra = " ".join(f"{k}={row[k]}" for k in ("weight", "digest", "verdict", "report") if row[k] is not None)
        move = f"{row['from'] or '-'} -> {row['to'] or '-'}"
        click.echo(f"{when}Z {row['pipeline']} {row['action']} {move} by {row['actor']} {extra}".rstrip())
        if row["action"] == "analysis_window":  # canary against stable, not the raw figures
            _, window, requests, latency, ttft, shift, decision = window_cells(row)
            click.echo(f"    window {window}: requests {requests}; latency {latency}; TTFT p50 {ttft}")
            click.echo(f"    shift {shift}; {decision}")
        elif row["detail"]:
            click.echo(f"    {detail_text(row['detail'])}")
