"""``gates handle-event`` (what a workflow calls) and ``gates serve`` (a webhook receiver)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import click

from gates.cli.common import default_artifacts, ledger_options, open_ledger
from gates.errors import BadInputError, ExitCode, GatesError, InfraError
from gates.events.handle import HandlerContext, handle_event, load_payload
from gates.events.routing import MalformedEvent
from gates.events.webhook import Delivery, WebhookServer, serve_forever


def _context(repo_dir: Path, ledger_url: str, artifacts: Path | None) -> HandlerContext:
    root = artifacts or default_artifacts()
    return HandlerContext(
        repo_dir.resolve(), open_ledger(ledger_url, root), dict(os.environ), root.resolve(), click.echo
    )


@click.command("handle-event")
@click.option("--name", required=True, help="Event name (GITHUB_EVENT_NAME / X-GitHub-Event).")
@click.option("--payload", required=True, type=click.Path(dir_okay=False, path_type=Path), help="GITHUB_EVENT_PATH.")
@click.option("--dry-run", is_flag=True, help="Print the actions; execute none.")
@click.option("--repo-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True)
@click.option("--artifacts", type=click.Path(file_okay=False, path_type=Path), default=None)
@ledger_options
def handle(
    name: str, payload: Path, dry_run: bool, repo_dir: Path, artifacts: Path | None, ledger_url: str, actor: str
) -> None:
    """Route one GitHub event to gate runs, promotions, rollbacks or replies, and carry them out.

    Exit 0 when nothing was needed or everything passed, 1 a gate failed or a canary was rolled
    back or refused, 2 a malformed payload, 3 an infrastructure error.
    """
    del actor  # the actor of an event is the one in its payload
    ctx = _context(repo_dir, ledger_url, artifacts)
    try:
        outcome = handle_event(name, load_payload(payload), ctx, dry_run=dry_run)
    except MalformedEvent as exc:  # name the file, as for every bad input
        raise MalformedEvent(f"{payload}: {exc} ({name} event)") from exc
    click.echo(f"{name}: {outcome.routed.reason}")
    for action in outcome.routed.actions:
        click.echo(f"  {'would ' if dry_run else ''}{action.describe()}")
    for result in outcome.results:
        click.echo(f"  -> exit {int(result.exit_code)}: {result.message}")
    sys.exit(int(outcome.exit_code))


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


def _processor(ctx: HandlerContext) -> Callable[[Delivery], str]:
    def process(d: Delivery) -> str:
        try:
            outcome = handle_event(d.event, d.payload, ctx)
            code, text = outcome.exit_code, f"exit {int(outcome.exit_code)}: {outcome.routed.reason}"
        except GatesError as exc:
            code, text = exc.exit_code, f"exit {int(exc.exit_code)}: {exc}"
        click.echo(f"delivery {d.id} ({d.event}): {text}")
        if code == ExitCode.INFRA:  # not for good (GitHub timed out, a server died): a redelivery runs it again
            raise InfraError(text)
        return text

    return process
