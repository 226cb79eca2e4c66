"""``gates canary``: register a canary deployment, serve the local router, set its weight."""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import click

from gates.artifacts import ArtifactStore
from gates.cli.common import (
    default_artifacts,
    ledger_options,
    open_ledger,
    pipeline_argument,
    pipeline_file,
    writable_dir,
)
from gates.cli.promote import carry_out, repo_options
from gates.config import load_pipeline
from gates.ledger import CanaryState
from gates.promotion.local_serve import ProxyKind, ServeOptions, serve_local_canary
from gates.promotion.targets.kserve import KServeEndpoint


def _check_digest(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"[0-9a-f]{64}", value):
        raise click.BadParameter("a build digest is 64 lowercase hex digits (report.json candidate.build_digest)")
    return value


@click.group("canary")
def command() -> None:
    """Canary deployments: local (HAProxy, or gates' own router, before Triton) or KServe."""


def pipeline_name(arg: str) -> str:
    """The name PIPELINE (a file, or a name in ./pipelines/) records its canary under."""
    return load_pipeline(pipeline_file(arg)).config.name


@command.command("serve")
@pipeline_argument
@click.option(
    "--triton",
    default=None,
    help="host:port of an existing Triton's HTTP endpoint serving both models (with --stable and --canary). "
    "Default: start a local tritonserver with the builds the gate measured (baseline as stable, candidate as "
    "canary; run `gates run PIPELINE` first).",
)
@click.option("--served", default="model", show_default=True, help="Model name clients call.")
@click.option("--stable", "stable", default=None, help="Triton model name of the stable arm (with --triton).")
@click.option("--canary", "canary_model", default=None, help="Triton model name of the canary arm (with --triton).")
@click.option("--port", default=0, show_default=True, help="Router port on 127.0.0.1 (0: any free port).")
@click.option("--weight", default=0, show_default=True, type=click.IntRange(0, 100), help="Percent to the canary.")
@click.option("--triton-grpc", default=None, help="host:port of Triton's gRPC endpoint (live re-checks use it).")
@click.option(
    "--proxy",
    type=click.Choice(["haproxy", "nginx", "builtin"]),
    default="haproxy",
    show_default=True,
    help="haproxy: Debian's HAProxy (weights over its admin socket, sticky users, per-request timing log for "
    "canary analysis); nginx: Debian's nginx (the same, weights by reload, and mirror mode for "
    "promotion.mirror); builtin: gates' own router (no canary analysis).",
)
@click.option("--sticky-header", default="X-User-Id", show_default=True, help="Header naming the user (proxies).")
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".gates/proxy"),
    show_default=True,
    help="Where the proxy's config, admin socket and request log go.",
)
@click.option(
    "--digest",
    default=None,
    callback=_check_digest,
    help="Build digest of what the canary serves (report.json candidate.build_digest); default: computed from "
    "the build Triton's canary model loads. Promotion checks that this build passed the gate.",
)
@click.option(
    "--artifacts",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Artifact store root holding the measured builds, without --triton (default: $GATES_ARTIFACTS or "
    "./artifacts).",
)
@ledger_options
def serve(
    pipeline: str,
    triton: str | None,
    served: str,
    stable: str | None,
    canary_model: str | None,
    port: int,
    weight: int,
    triton_grpc: str | None,
    proxy: str,
    sticky_header: str,
    workdir: Path,
    digest: str | None,
    artifacts: Path | None,
    ledger_url: str,
    actor: str,
) -> None:
    """Run the local canary proxy (until SIGTERM/Ctrl-C) and record it as PIPELINE's canary; without
    --triton, first start a local tritonserver serving the builds the gate measured."""
    pf = load_pipeline(pipeline_file(pipeline))
    options = ServeOptions(
        ProxyKind(proxy), served, sticky_header, weight, port, workdir.resolve(), digest, triton, stable, canary_model,
        triton_grpc,
    )  # fmt: skip
    store = ArtifactStore(writable_dir("--artifacts", artifacts or default_artifacts())) if triton is None else None
    serve_local_canary(pf, options, store, open_ledger(ledger_url), actor, click.echo, _wait)


def _wait() -> None:
    # SIGTERM ends the wait as Ctrl-C does, so the proxy is stopped by its PID on that path too
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


@command.command("register-kserve")
@pipeline_argument
@click.option("--namespace", required=True)
@click.option("--name", required=True, help="InferenceService name.")
@click.option(
    "--storage-uri", required=True, help="Where the candidate's Triton model repository is (s3://, gs://, pvc://…)."
)
@click.option(
    "--digest",
    required=True,
    callback=_check_digest,
    help="Build digest of what the InferenceService serves (report.json candidate.build_digest): promotion "
    "checks that this build passed the gate.",
)
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
    digest: str,
    url: str | None,
    model: str | None,
    grpc: str | None,
    stable_grpc: str | None,
    ledger_url: str,
    actor: str,
) -> None:
    """Record a KServe InferenceService as PIPELINE's canary target (weight 0)."""
    pipeline = pipeline_name(pipeline)
    ledger = open_ledger(ledger_url)
    endpoint = KServeEndpoint(namespace, name, storage_uri, url, model, grpc, stable_grpc).encode()
    state = CanaryState(pipeline, "kserve", endpoint, None, storage_uri, 0, time.time(), digest)
    ledger.set_canary(state, actor, "canary_deploy")
    click.echo(f"registered kserve canary {namespace}/{name} for {pipeline}")


@command.command("set")
@pipeline_argument
@click.option("--weight", type=click.IntRange(0, 100), required=True, help="Percent of traffic to the canary.")
@repo_options
@ledger_options
def set_(pipeline: str, weight: int, repo_dir: Path, ledger_url: str, actor: str) -> None:
    """Send WEIGHT percent of PIPELINE's traffic to its canary.

    Authorized as ``gates promote`` is (promotion.approvers, CODEOWNERS) and recorded in the ledger
    (canary_set, or canary_set_denied). Exit 0 moved, 2 bad input, 4 not authorized."""
    carry_out("canary_set", pipeline, None, repo_dir, ledger_url, actor, weight)
