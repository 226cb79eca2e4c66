"""``gates promote`` / ``gates rollback``: the canary to 100% or to 0%, recorded."""

from __future__ import annotations

import click

from gates.cli.common import ledger_options, open_ledger
from gates.promotion import canary as ops


@click.command("promote")
@click.argument("pipeline")
@ledger_options
def promote(pipeline: str, ledger_url: str, actor: str) -> None:
    """Send all of PIPELINE's traffic to its canary."""
    state = ops.promote(open_ledger(ledger_url), pipeline, actor)
    click.echo(f"{pipeline}: promoted, canary at {state.weight}%")


@click.command("rollback")
@click.argument("pipeline")
@ledger_options
def rollback(pipeline: str, ledger_url: str, actor: str) -> None:
    """Send none of PIPELINE's traffic to its canary."""
    state = ops.rollback(open_ledger(ledger_url), pipeline, actor)
    click.echo(f"{pipeline}: rolled back, canary at {state.weight}%")
