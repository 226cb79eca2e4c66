"""``gates``: the click group, the one place where errors become exit codes."""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType
from typing import Any

import click

from gates import __version__
from gates.cli import artifacts as artifacts_cmd
from gates.cli import canary as canary_cmd
from gates.cli import events as events_cmd
from gates.cli import formats as formats_cmd
from gates.cli import history as history_cmd
from gates.cli import promote as promote_cmd
from gates.cli import publish as publish_cmd
from gates.cli import run as run_cmd
from gates.errors import ExitCode, GatesError
from gates.github.actions import error_annotation


class _Terminated(KeyboardInterrupt):
    """SIGTERM turned into an exception so every ``finally`` (stopping Triton) runs."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _Terminated()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gates")
def cli() -> None:
    """A promotion gate for optimized LLMs."""


cli.add_command(run_cmd.command)
cli.add_command(formats_cmd.command)
cli.add_command(publish_cmd.command)
cli.add_command(canary_cmd.command)
cli.add_command(artifacts_cmd.command)
cli.add_command(promote_cmd.promote)
cli.add_command(promote_cmd.rollback)
cli.add_command(promote_cmd.recheck)
cli.add_command(events_cmd.handle)
cli.add_command(events_cmd.serve)
cli.add_command(history_cmd.command)


def main(argv: list[str] | None = None) -> Any:
    signal.signal(signal.SIGTERM, _on_sigterm)
    if argv is not None and any("\0" in a for a in argv):  # the OS never passes one; a caller might
        click.echo("gates: error: an argument contains a NUL byte", err=True)
        sys.exit(int(ExitCode.BAD_INPUT))
    try:
        cli.main(args=argv, prog_name="gates", standalone_mode=False)
    except GatesError as exc:
        click.echo(f"gates: error: {exc}", err=True)
        if os.environ.get("GITHUB_ACTIONS") == "true":
            click.echo(
                error_annotation(
                    str(exc),
                    getattr(exc, "path", None),
                    getattr(exc, "line", None),
                    title=f"gates: {type(exc).__name__}",
                )
            )
        sys.exit(int(exc.exit_code))
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(int(ExitCode.BAD_INPUT))
    except click.exceptions.Abort:
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("gates: interrupted; servers stopped", err=True)
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:  # a bug is never a pass
        click.echo(f"gates: internal error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(int(ExitCode.INFRA))
    sys.exit(0)
