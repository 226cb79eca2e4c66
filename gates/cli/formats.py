"""``gates formats``: our quantization format names and what Model Optimizer runs for each."""

from __future__ import annotations

import click

from gates.optimize.quantize import FORMATS, cuda_available


@click.command("formats")
def command() -> None:
    """List quantization formats, their Model Optimizer config and what they need."""
    cuda = cuda_available()
    click.echo(f"{'format':10} {'modelopt config':22} {'here':10} note")
    for name, info in FORMATS.items():
        here = (
            "real"
            if name == "none"
            else ("refused" if info.needs_cuda and not cuda else ("simulated" if not cuda else "cuda"))
        )
        click.echo(f"{name:10} {info.modelopt_cfg or '-':22} {here:10} {info.note}")
