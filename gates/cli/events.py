"""``gates serve`` (a webhook receiver) and carrying out a routed event (``gates handle-event``)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from gates.cli.common import default_artifacts, ledger_options, open_ledger
from gates.errors import BadInputError, ExitCode, GatesError, InfraError
from gates.events.handle import HandlerContext, handle_event
from gates.events.webhook import Delivery, WebhookServer, serve_forever


def _context(repo_dir: Path, ledger_url: str, artifacts: Path | None) -> HandlerContext:
    root = artifacts or default_artifacts()
    # the journal is replayed before the first action that reads runs, never before a rollback
    ledger = open_ledger(ledger_url, root, replay=False)
    return HandlerContext(repo_dir.resolve(), ledger, dict(os.environ), root.resolve(), click.echo, replay_journal=True)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="0: any free port.")
@click.option("--workers", default=4, show_default=True, type=click.IntRange(1, 64))
@click.option("--repo-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True)
@click.option("--artifacts", type=click.Path(file_okay=False, path_type=Path), default=None)
@ledger_options
def serve(
    host: str, port: int, workers: int, repo_dir: Path, artifacts: Path | None, ledger_url: str, actor: str
) -> None:
    """Receive GitHub webhooks (secret in $GATES_WEBHOOK_SECRET) and handle them in the background."""
    del actor
    secret = os.environ.get("GATES_WEBHOOK_SECRET", "").encode()
    if not secret:
        raise BadInputError("set GATES_WEBHOOK_SECRET: gates serve does not accept unsigned webhooks")
    ctx = _context(repo_dir, ledger_url, artifacts)
    with WebhookServer(secret, ctx.ledger, _processor(ctx), host, port, workers, click.echo) as server:
        click.echo(f"gates serve: listening on {server.url} ({workers} workers)")
        serve_forever()


def execute(name: str, payload: Any, repo_dir: Path, ledger_url: str, artifacts: Path | None) -> ExitCode:
    """Carry out what one event routes to (``gates handle-event`` without ``--dry-run``)."""
    outcome = handle_event(name, payload, _context(repo_dir, ledger_url, artifacts))
    click.echo(f"{name}: {outcome.routed.reason}")
    for action in outcome.routed.actions:
        click.echo(f"  {action.describe()}")
    for result in outcome.results:
        click.echo(f"  -> exit {int(result.exit_code)}: {result.message}")
    return outcome.exit_code


def _processor(ctx: HandlerContext) -> Callable[[Delivery], str]:
    def process(d: Delivery) -> str:
        try:
            outcome = handle_event(d.event, d.payload, ctx)
            said = "".join(f"; {r.action.kind}: {r.message}" for r in outcome.results)  # the log's one copy
            code, text = outcome.exit_code, f"exit {int(outcome.exit_code)}: {outcome.routed.reason}{said}"
        except GatesError as exc:
            code, text = exc.exit_code, f"exit {int(exc.exit_code)}: {exc}"
        click.echo(f"delivery {d.id} ({d.event}): {text}")
        if code == ExitCode.INFRA:  # not for good (GitHub timed out, a server died): a redelivery runs it again
            raise InfraError(text)
        return text

    return process
