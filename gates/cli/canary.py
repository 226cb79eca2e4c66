"""``gates canary``: register a canary deployment, serve the local router, set its weight."""

from __future__ import annotations

import json
import re
import signal
import time
import urllib.parse
import urllib.request
from pathlib import Path

import click

from gates.artifacts import ArtifactStore, tree_digest
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
from gates.errors import BadInputError
from gates.ledger import CanaryState, Ledger
from gates.promotion.haproxy import HAProxy, HAProxyEndpoint, ProxySpec
from gates.promotion.local_serve import serve_measured_builds
from gates.promotion.nginx import Nginx
from gates.promotion.targets.kserve import KServeEndpoint
from gates.promotion.targets.weighted_router import WeightedRouter


def served_build_digest(triton: str, model: str, timeout_s: float = 10.0) -> tuple[str, Path] | None:
    """(build digest, path) of what Triton's ``model`` loads: gates' Triton models name their build
    (parameter ``artifact_path``); None when Triton does not say or the build is not readable here."""
    url = f"http://{triton}/v2/models/{urllib.parse.quote(model, safe='')}/config"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as r:
            config = json.loads(r.read())
        path = Path(config["parameters"]["artifact_path"]["string_value"])
        return (tree_digest(path), path) if path.is_dir() else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def digest_to_record(given: str | None, served: tuple[str, Path] | None, model: str) -> str:
    """The build digest the canary is recorded with: a canary without one is never promoted, so
    none is refused here, as is a --digest that is not what Triton's model serves."""
    if given and served and given != served[0]:
        raise BadInputError(
            f"--digest {given} is not the build Triton's model {model!r} serves ({served[1]}: {served[0]})"
        )
    if given:
        return given
    if served:
        return served[0]
    raise BadInputError(
        f"the build Triton's model {model!r} serves is not readable here: pass --digest with its build digest "
        "(report.json candidate.build_digest); a canary without one is never promoted"
    )


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
def serve_command(
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
    serve(pipeline, triton, served, stable, canary_model, port, weight, triton_grpc, proxy, sticky_header, workdir,
          digest, artifacts, ledger_url, actor)  # fmt: skip


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
    request_logs: dict[str, str] | None = None,
) -> None:
    """Run the local canary proxy (until SIGTERM/Ctrl-C) and record it as PIPELINE's canary; without
    --triton, first start a local tritonserver serving the builds the gate measured."""
    if triton is None:
        if stable or canary_model or triton_grpc:
            raise BadInputError("--stable, --canary and --triton-grpc name models of an existing Triton: pass --triton")
        pf = load_pipeline(pipeline_file(pipeline))
        store = ArtifactStore(writable_dir("--artifacts", artifacts or default_artifacts()))
        with serve_measured_builds(pf, store, (workdir / "triton").resolve()) as arms:
            click.echo(
                f"tritonserver (pid {arms.pid}) at {arms.triton}: {arms.stable} (stable), {arms.canary} (canary)"
            )
            serve(pipeline, arms.triton, served, arms.stable, arms.canary, port, weight, arms.triton_grpc, proxy,
                  sticky_header, workdir, digest, None, ledger_url, actor, arms.request_logs)  # fmt: skip
        click.echo("tritonserver stopped")
        return
    if stable is None or canary_model is None:
        raise BadInputError("--triton needs --stable and --canary: the Triton model names of both arms")
    pipeline = pipeline_name(pipeline)
    digest = digest_to_record(digest, served_build_digest(triton, canary_model), canary_model)
    ledger = open_ledger(ledger_url)
    if proxy == "haproxy":
        spec = ProxySpec(triton, served, stable, canary_model, sticky_header)
        serve_haproxy(ledger, pipeline, spec, workdir.resolve(), weight, port, triton_grpc, digest, actor, request_logs)
        click.echo("HAProxy stopped")
        return
    if proxy == "nginx":
        spec = ProxySpec(triton, served, stable, canary_model, sticky_header)
        serve_nginx(ledger, pipeline, spec, workdir.resolve(), weight, port, triton_grpc, digest, actor, request_logs)
        click.echo("nginx stopped")
        return
    with WeightedRouter(triton, served, stable, canary_model, weight, port, triton_grpc) as router:
        ledger.set_canary(
            CanaryState(pipeline, "local", router.url, stable, canary_model, weight, time.time(), digest),
            actor,
            "canary_deploy",
        )
        click.echo(f"router: http://{router.url}/v2/models/{served}/… (canary {canary_model} at {weight}%)")
        _wait()


def _wait() -> None:
    # SIGTERM ends the wait as Ctrl-C does, so the proxy is stopped by its PID on that path too
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


def serve_haproxy(
    ledger: Ledger,
    pipeline: str,
    spec: ProxySpec,
    workdir: Path,
    weight: int,
    port: int,
    triton_grpc: str | None,
    digest: str,
    actor: str,
    request_logs: dict[str, str] | None = None,
) -> None:
    with HAProxy(spec, workdir, weight, port) as proxy:
        endpoint = HAProxyEndpoint(
            proxy.url, str(proxy.admin), str(proxy.log_path), proxy.pid or 0, spec.served, triton_grpc, request_logs
        )
        state = CanaryState(
            pipeline, "haproxy", endpoint.encode(), spec.stable, spec.canary, weight, time.time(), digest
        )
        ledger.set_canary(state, actor, "canary_deploy")
        click.echo(
            f"HAProxy (pid {proxy.pid}): http://{proxy.url}/v2/models/{spec.served}/… (canary {spec.canary} at "
            f"{proxy.read_weight()}%, sticky on {spec.sticky_header}); request log {proxy.log_path}"
        )
        _wait()


def serve_nginx(
    ledger: Ledger,
    pipeline: str,
    spec: ProxySpec,
    workdir: Path,
    weight: int,
    port: int,
    triton_grpc: str | None,
    digest: str,
    actor: str,
    request_logs: dict[str, str] | None = None,
) -> None:
    with Nginx(spec, workdir, weight, port) as proxy:
        endpoint = proxy.endpoint(triton_grpc, request_logs)
        state = CanaryState(pipeline, "nginx", endpoint.encode(), spec.stable, spec.canary, weight, time.time(), digest)
        ledger.set_canary(state, actor, "canary_deploy")
        click.echo(
            f"nginx (pid {proxy.pid}): http://{proxy.url}/v2/models/{spec.served}/… (canary {spec.canary} at "
            f"{proxy.read_weight()}%, sticky on {spec.sticky_header}); request log {proxy.log_path}"
        )
        _wait()


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
