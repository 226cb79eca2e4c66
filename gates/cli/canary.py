"""``gates canary``: register a canary deployment, serve the local router, set its weight."""

from __future__ import annotations

import time

import click

from gates.cli.common import ledger_options, open_ledger
from gates.ledger import CanaryState
from gates.promotion import canary as ops
from gates.promotion.targets.kserve import KServeEndpoint
from gates.promotion.targets.weighted_router import WeightedRouter


@click.group("canary")
def command() -> None:
    """Canary deployments: local (weighted router before Triton) or KServe."""


@command.command("serve")
@click.argument("pipeline")
@click.option("--triton", required=True, help="host:port of Triton's HTTP endpoint serving both models.")
@click.option("--served", default="model", show_default=True, help="Model name clients call.")
@click.option("--stable", "stable", required=True, help="Triton model name of the stable arm.")
@click.option("--canary", "canary_model", required=True, help="Triton model name of the canary arm.")
@click.option("--port", default=0, show_default=True, help="Router port on 127.0.0.1 (0: any free port).")
@click.option("--weight", default=0, show_default=True, type=click.IntRange(0, 100), help="Percent to the canary.")
@click.option("--triton-grpc", default=None, help="host:port of Triton's gRPC endpoint (live re-checks use it).")
@click.option("--digest", default=None, help="Artifact digest of the canary model (promotion checks it passed).")
@ledger_options
def serve(
    pipeline: str,
    triton: str,
    served: str,
    stable: str,
    canary_model: str,
    port: int,
    weight: int,
    triton_grpc: str | None,
    digest: str | None,
    ledger_url: str,
    actor: str,
) -> None:
    """Run the local weighted router (until SIGTERM/Ctrl-C) and record it as PIPELINE's canary."""
    ledger = open_ledger(ledger_url)
    with WeightedRouter(triton, served, stable, canary_model, weight, port, triton_grpc) as router:
        ledger.set_canary(
            CanaryState(pipeline, "local", router.url, stable, canary_model, weight, time.time(), digest),
            actor,
            "canary_deploy",
        )
        click.echo(f"router: http://{router.url}/v2/models/{served}/… (canary {canary_model} at {weight}%)")
        _wait()


def _wait() -> None:
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


@command.command("register-kserve")
@click.argument("pipeline")
@click.option("--namespace", required=True)
@click.option("--name", required=True, help="InferenceService name.")
@click.option(
    "--storage-uri", required=True, help="Where the candidate's Triton model repository is (s3://, gs://, pvc://…)."
)
@click.option("--digest", default=None, help="Artifact digest of the canary model (promotion checks it passed).")
@click.option("--url", default=None, help="The canary revision's URL (tag routing), for live re-checks.")
@click.option("--model", default=None, help="The Triton model name the InferenceService serves.")
@click.option("--grpc", default=None, help="host:port of the canary revision's gRPC endpoint (drift re-checks).")
@click.option("--stable-grpc", default=None, help="host:port of the stable revision's gRPC endpoint (drift re-checks).")
@ledger_options
def register_kserve(
    pipeline: str,
    namespace: str,
    name: str,
    storage_uri: str,
    digest: str | None,
    url: str | None,
    model: str | None,
    grpc: str | None,
    stable_grpc: str | None,
    ledger_url: str,
    actor: str,
) -> None:
    """Record a KServe InferenceService as PIPELINE's canary target (weight 0)."""
    ledger = open_ledger(ledger_url)
    endpoint = KServeEndpoint(namespace, name, storage_uri, url, model, grpc, stable_grpc).encode()
    state = CanaryState(pipeline, "kserve", endpoint, None, storage_uri, 0, time.time(), digest)
    ledger.set_canary(state, actor, "canary_deploy")
    click.echo(f"registered kserve canary {namespace}/{name} for {pipeline}")


@command.command("set")
@click.argument("pipeline")
@click.option("--weight", type=click.IntRange(0, 100), required=True, help="Percent of traffic to the canary.")
@ledger_options
def set_(pipeline: str, weight: int, ledger_url: str, actor: str) -> None:
    """Send WEIGHT percent of PIPELINE's traffic to its canary."""
    state = ops.set_weight(open_ledger(ledger_url), pipeline, weight, actor)
    click.echo(f"{pipeline}: canary at {state.weight}% on {state.target}")
