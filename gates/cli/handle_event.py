"""``gates handle-event``: what a workflow calls with the event GitHub delivered.

Light on purpose: ``--dry-run`` (route and print, execute nothing) needs only click, pydantic and
PyYAML, like the hosted ``plan`` job; carrying the actions out imports the promotion service and
the gate only then.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from gates.cli.common import ledger_options
from gates.events.plan import load_payload, route_event
from gates.events.routing import MalformedEvent


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
    body = load_payload(payload)
    try:
        if not dry_run:
            from gates.cli.events import execute  # the promotion service and the gate: heavy

            sys.exit(int(execute(name, body, repo_dir.resolve(), ledger_url, artifacts)))
        routed = route_event(name, body, repo_dir.resolve())
    except MalformedEvent as exc:  # name the file, as for every bad input
        raise MalformedEvent(f"{payload}: {exc} ({name} event)") from exc
    click.echo(f"{name}: {routed.reason}")
    for action in routed.actions:
        click.echo(f"  would {action.describe()}")
    sys.exit(0)
