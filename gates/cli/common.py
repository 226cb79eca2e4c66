"""Options shared by the commands that touch the ledger."""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from gates.config.names import locate_pipeline
from gates.errors import BadInputError
from gates.journal import Journal, retry
from gates.ledger import Ledger
from gates.ledger.db import require_durable


def default_ledger() -> str:
    """$GATES_LEDGER, else a SQLite file beside the artifact store (outside the workspace wherever
    the store is, e.g. the GPU runner image's /opt/gates/artifacts). Empty is unset, as a
    workflow's ``${{ secrets.X || '' }}`` gives."""
    return os.environ.get("GATES_LEDGER") or str(default_artifacts() / "ledger.sqlite")


def default_actor() -> str:
    return os.environ.get("GITHUB_ACTOR") or os.environ.get("USER") or getpass.getuser()


def ledger_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option(
        "--ledger",
        "ledger_url",
        default=default_ledger,
        show_default="$GATES_LEDGER, else ledger.sqlite in $GATES_ARTIFACTS or ./artifacts",
        help="SQLite path or database URL of the ledger.",
    )(fn)
    fn = click.option(
        "--actor", default=default_actor, show_default="$GITHUB_ACTOR or $USER", help="Who is acting (recorded)."
    )(fn)
    return fn


def default_artifacts() -> Path:
    return Path(os.environ.get("GATES_ARTIFACTS") or "artifacts")


def writable_dir(option: str, given: Path) -> Path:
    """``given`` resolved, created if missing, and written to once: refused (exit 2) before any model work."""
    path = given.resolve()
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".gates-write-test-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except (OSError, ValueError) as exc:
        raise BadInputError(f"{option} {given}: cannot write there: {exc}") from None
    return path


def open_ledger(url: str, artifacts: Path | None = None, replay: bool = True) -> Ledger:
    """The ledger, with whatever an earlier command had to journal (a busy ledger) written into it first
    (``replay=False``: not now; a rollback never waits on the journal).

    On an ephemeral runner a SQLite ledger is refused: it would die with the runner."""
    require_durable(url, os.environ)
    ledger = retry("opening the ledger", lambda: Ledger(url, busy_timeout_s=5.0))
    if replay:
        Journal(artifacts or default_artifacts()).replay(ledger, lambda line: click.echo(line, err=True))
    return ledger


def pipeline_argument(fn: Callable[..., Any]) -> Callable[..., Any]:
    """PIPELINE, the same for every command: a pipeline file, or a name where it names exactly one
    file in ``pipelines/`` (``gates.config.names.locate_pipeline``)."""
    return click.argument("pipeline", metavar="PIPELINE")(fn)


def pipeline_file(arg: str, repo_dir: Path | None = None) -> Path:
    """The file PIPELINE names; names are looked up in ``<repo_dir or .>/pipelines/``."""
    return locate_pipeline(arg, repo_dir or Path("."))
