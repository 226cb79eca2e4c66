"""``gates promote`` / ``gates rollback`` / ``gates recheck``: the promotion state machine by hand.

The same code path as ``/gates promote`` on a PR (authorization by ``promotion.approvers``,
the digest that passed, a re-check at every step), for operators and workflow_dispatch.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from gates.cli.common import default_artifacts, ledger_options, open_ledger, pipeline_argument, pipeline_file
from gates.config.analysis import TrafficMode
from gates.errors import BadInputError
from gates.github.client import GitHubClients
from gates.promotion.commit_verdict import configured_architectures
from gates.promotion.service import PromotionService, Request


def carry_out(
    kind: str,
    pipeline: str,
    pr: int | None,
    repo_dir: Path,
    ledger_url: str,
    actor: str,
    weight: int = 0,
    traffic: str | None = None,
) -> None:
    """One promotion-service action from the command line; its message printed once, its code the exit."""
    env = dict(os.environ)
    path = pipeline_file(pipeline, repo_dir)  # refused (exit 2) before the ledger is opened
    if not path.resolve().is_relative_to(repo_dir.resolve()):  # promotion reads configs from the repository only
        raise BadInputError(f"{pipeline}: not a pipeline config under --repo-dir {repo_dir.resolve()}")
    service = PromotionService(
        repo_dir.resolve(),
        open_ledger(ledger_url, default_artifacts(), replay=kind != "rollback"),  # a rollback never waits
        GitHubClients(env),
        click.echo,
        report_url=env.get("GATES_REPORT_URL"),
        architectures=configured_architectures(env),
        traffic=TrafficMode(traffic) if traffic else None,
    )
    rel = path.resolve().relative_to(repo_dir.resolve()).as_posix()
    request = Request(rel, env.get("GITHUB_REPOSITORY", "local/local"), actor, pr, None, f"gates {kind}")
    code, message = service.carry_out(kind, request, weight)
    click.echo(message if code == 0 else f"gates: {message}", err=code != 0)
    sys.exit(int(code))


def repo_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--repo-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path("."),
        show_default=True,
        help="The repository: pipeline names are looked up in its pipelines/, CODEOWNERS read from it.",
    )(fn)


def _options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = repo_options(fn)
    fn = click.option("--pr", type=int, default=None, help="The pull request whose passing gate run is promoted.")(fn)
    fn = pipeline_argument(fn)
    return ledger_options(fn)


_TRAFFIC = click.option(
    "--traffic",
    type=click.Choice([m.value for m in TrafficMode]),
    default=None,
    help="Canary analysis (promotion.analysis): judge live traffic, or drive a paired synthetic load through "
    "the target during each window (default: promotion.analysis.traffic).",
)


@click.command("promote")
@_options
@_TRAFFIC
def promote(pipeline: str, pr: int | None, repo_dir: Path, ledger_url: str, actor: str, traffic: str | None) -> None:
    """Walk PIPELINE's canary through promotion.steps, checking at each; roll back on failure.

    Exit 0 promoted or paused at the manual gate, 1 refused or rolled back, 2 bad input, 3
    infrastructure, 4 not authorized."""
    carry_out("promote", pipeline, pr, repo_dir, ledger_url, actor, traffic=traffic)


@click.command("rollback")
@_options
def rollback(pipeline: str, pr: int | None, repo_dir: Path, ledger_url: str, actor: str) -> None:
    """Send none of PIPELINE's traffic to its canary, whatever step or gate it is at (exit 4: not authorized)."""
    carry_out("rollback", pipeline, pr, repo_dir, ledger_url, actor)


@click.command("recheck")
@_options
@_TRAFFIC
def recheck(pipeline: str, pr: int | None, repo_dir: Path, ledger_url: str, actor: str, traffic: str | None) -> None:
    """Re-check PIPELINE's canary where it stands (e.g. at the manual gate); roll back on failure.

    Exit 0 when the re-check passed or nothing is in progress (none deployed, promoted, rolled
    back earlier), 1 when this re-check rolled the canary back."""
    carry_out("recheck", pipeline, pr, repo_dir, ledger_url, actor, traffic=traffic)
