"""``gates``: the click group, the one place where errors become exit codes."""

from __future__ import annotations

import importlib
import os
import signal
import sys
from types import FrameType
from typing import Any

import click

from gates import __version__
from gates.errors import ExitCode, GatesError
from gates.github.actions import error_annotation

# name -> ("module:attribute", one-line help). Each command is imported only when it runs, so
# `gates --help` and the light commands never import torch, the engines or the judge.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("gates.cli.run:command", "Run the gate on one pipeline: optimize, build, serve, load, drift, judge."),
    "validate": (
        "gates.cli.validate:command",
        "Check pipelines without building or serving; can each gate reach a verdict?",
    ),
    "search": (
        "gates.cli.search:command",
        "Search a pipeline's search: space for the cheapest configuration that passes every gate.",
    ),
    "formats": ("gates.cli.formats:command", "Quantization formats, their Model Optimizer configs and kernels."),
    "publish": ("gates.cli.publish:command", "Publish a report.json to its pull request (comment and status)."),
    "canary": ("gates.cli.canary:command", "Serve, register and set canary targets."),
    "artifacts": ("gates.cli.artifacts:command", "List, verify and garbage-collect the artifact store."),
    "promote": ("gates.cli.promote:promote", "Promote a PASSed canary step by step (authorized, re-checked)."),
    "rollback": ("gates.cli.promote:rollback", "Roll a canary back to stable."),
    "recheck": ("gates.cli.promote:recheck", "Re-check the canary in progress against stable."),
    "handle-event": ("gates.cli.handle_event:handle", "Route one GitHub event to gate runs, promotions or replies."),
    "serve": ("gates.cli.events:serve", "Receive GitHub webhooks and handle them."),
    "history": ("gates.cli.history:command", "Runs, verdicts and promotions from the ledger."),
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use (click's documented lazy pattern)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, _, attr = COMMANDS[cmd_name][0].partition(":")
        command = getattr(importlib.import_module(module), attr)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):  # from the table: listing help imports no command
            formatter.write_dl([(name, COMMANDS[name][1]) for name in sorted(COMMANDS)])


class _Terminated(KeyboardInterrupt):
    """SIGTERM turned into an exception so every ``finally`` (stopping Triton) runs."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _Terminated()


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gates")
def cli() -> None:
    """A promotion gate for optimized LLMs."""


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
