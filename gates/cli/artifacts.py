"""``gates artifacts ls|verify|gc``: the content-addressed store."""

from __future__ import annotations

from pathlib import Path

import click

from gates.artifacts import ArtifactStore, gc, list_entries
from gates.cli.common import default_artifacts
from gates.errors import GatesError


def _root(value: Path | None) -> Path:
    return value or default_artifacts()


root_option = click.option(
    "--artifacts",
    "root",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Artifact store root (default: $GATES_ARTIFACTS or ./artifacts).",
)


@click.group("artifacts")
def command() -> None:
    """Inspect, verify and clean the artifact store."""


@command.command("ls")
@root_option
def ls(root: Path | None) -> None:
    """One line per artifact: kind, input digest, output digest, size, build time."""
    for e in list_entries(_root(root)):
        m = e.manifest or {}
        out = str(m.get("output_digest", "?"))[:12]
        click.echo(
            f"{e.kind:18} {e.path.name[:16]:16} out={out:12} {e.size_bytes / 1e6:8.2f} MB  "
            f"{m.get('created_at', 'no manifest')}  {m.get('build_wall_s', '')}"
        )


@command.command("verify")
@root_option
def verify(root: Path | None) -> None:
    """Check every artifact's files against its manifest; exit 3 if any differs."""
    bad = 0
    for e in list_entries(_root(root)):
        if ".corrupt-" in e.path.name:
            continue
        problem = ArtifactStore.verify(e.path)
        click.echo(
            f"{'ok  ' if problem is None else 'BAD '} {e.kind}/{e.path.name}{'' if problem is None else ': ' + problem}"
        )
        bad += problem is not None
    if bad:
        raise GatesError(f"{bad} artifact(s) do not match their manifest; the next run rebuilds them")


@command.command("gc")
@root_option
@click.option("--keep-days", default=14.0, show_default=True, help="Keep unreferenced artifacts younger than this.")
@click.option("--dry-run", is_flag=True, help="List what would be removed.")
def gc_cmd(root: Path | None, keep_days: float, dry_run: bool) -> None:
    """Remove corrupt copies and old artifacts that no recorded run references."""
    removed = gc(_root(root), keep_days, dry_run)
    for e in removed:
        click.echo(f"{'would remove' if dry_run else 'removed'} {e.kind}/{e.path.name} ({e.size_bytes / 1e6:.2f} MB)")
    click.echo(f"{len(removed)} artifact(s) {'to remove' if dry_run else 'removed'}")
