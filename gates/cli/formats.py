"""``gates formats``: our quantization format names, Model Optimizer's config for each, and which
engine runs each on real low-precision kernels here and on a GPU runner."""

from __future__ import annotations

import click

from gates.engines.where import formats_table


@click.command("formats")
def command() -> None:
    """List quantization formats, their Model Optimizer config and the engines that run them for real."""
    for line in formats_table():
        click.echo(line)
