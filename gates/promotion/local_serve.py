"""The local canary: a proxy (HAProxy, nginx, or gates' own router) before Triton, recorded in the
ledger, and, without ``--triton``, the Triton behind it serving the builds the gate measured.

``gates canary serve PIPELINE`` without ``--triton``: the builds the last deploy of this pipeline's
config served (remembered in the artifact store, gates/triton/warm.py) are loaded on a local
tritonserver under the pipeline's model names: the baseline as stable, the candidate as canary.
The canary is therefore byte for byte what the gate measured (its build digest is recorded and
checked at promotion); a pipeline whose builds are not in the store is refused, never rebuilt here.
"""

from __future__ import annotations

import dataclasses
import json
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path

from gates.artifacts import ArtifactStore, tree_digest
from gates.config.parse import PipelineFile
from gates.errors import BadInputError, InfraError
from gates.ledger import CanaryState, Ledger
from gates.promotion.haproxy import HAProxy, HAProxyEndpoint, ProxySpec
from gates.promotion.nginx import Nginx
from gates.promotion.targets.weighted_router import WeightedRouter
from gates.triton.warm import recall, start_builds


class ProxyKind(StrEnum):
    HAPROXY = "haproxy"  # Debian's HAProxy: weights over its admin socket, per-request timing log
    NGINX = "nginx"  # Debian's nginx: the same by reloads, and mirror mode
    BUILTIN = "builtin"  # gates' own router: the older re-check only, no canary analysis


@dataclasses.dataclass(frozen=True)
class ServeOptions:
    proxy: ProxyKind
    served: str  # the model name clients call
    sticky_header: str
    weight: int
    port: int  # 0: a free one
    workdir: Path
    digest: str | None  # of what the canary serves; None: read from Triton's canary model
    triton: str | None = None  # an existing Triton (host:port); None: start one with the measured builds
    stable: str | None = None  # its model names (with ``triton``)
    canary: str | None = None
    triton_grpc: str | None = None


def serve_local_canary(
    pf: PipelineFile,
    opts: ServeOptions,
    store: ArtifactStore | None,
    ledger: Ledger,
    actor: str,
    say: Callable[[str], None],
    wait: Callable[[], None],
) -> None:
    """Serve PIPELINE's local canary until ``wait`` returns (SIGTERM, Ctrl-C), recorded in the
    ledger; everything started here is stopped by PID on every way out."""
    if opts.triton is None:
        if opts.stable or opts.canary or opts.triton_grpc:
            raise BadInputError("--stable, --canary and --triton-grpc name models of an existing Triton: pass --triton")
        if store is None:
            raise BadInputError("without --triton the measured builds come from the artifact store: pass --artifacts")
        with serve_measured_builds(pf, store, opts.workdir / "triton") as arms:
            say(f"tritonserver (pid {arms.pid}) at {arms.triton}: {arms.stable} (stable), {arms.canary} (canary)")
            on = dataclasses.replace(
                opts, triton=arms.triton, stable=arms.stable, canary=arms.canary, triton_grpc=arms.triton_grpc
            )
            _proxy(pf.config.name, on, ledger, actor, say, wait, arms.request_logs)
        say("tritonserver stopped")
        return
    _proxy(pf.config.name, opts, ledger, actor, say, wait, None)


def _proxy(
    name: str,
    opts: ServeOptions,
    ledger: Ledger,
    actor: str,
    say: Callable[[str], None],
    wait: Callable[[], None],
    request_logs: dict[str, str] | None,
) -> None:
    if opts.triton is None or opts.stable is None or opts.canary is None:
        raise BadInputError("--triton needs --stable and --canary: the Triton model names of both arms")
    digest = digest_to_record(opts.digest, served_build_digest(opts.triton, opts.canary), opts.canary)
    spec = ProxySpec(opts.triton, opts.served, opts.stable, opts.canary, opts.sticky_header)
    where = f"http://127.0.0.1:{{}}/v2/models/{spec.served}/… (canary {spec.canary} at {{}}%, "
    where += f"sticky on {spec.sticky_header})"

    def record(kind: str, endpoint: str) -> None:
        state = CanaryState(name, kind, endpoint, spec.stable, spec.canary, opts.weight, time.time(), digest)
        ledger.set_canary(state, actor, "canary_deploy")

    if opts.proxy == ProxyKind.HAPROXY:
        with HAProxy(spec, opts.workdir, opts.weight, opts.port) as haproxy:
            endpoint = HAProxyEndpoint(
                haproxy.url, str(haproxy.admin), str(haproxy.log_path), haproxy.pid or 0, spec.served,
                opts.triton_grpc, request_logs,
            )  # fmt: skip
            record("haproxy", endpoint.encode())
            say(f"HAProxy (pid {haproxy.pid}): " + where.format(haproxy.port, haproxy.read_weight()))
            wait()
        say("HAProxy stopped")
    elif opts.proxy == ProxyKind.NGINX:
        with Nginx(spec, opts.workdir, opts.weight, opts.port) as nginx:
            record("nginx", nginx.endpoint(opts.triton_grpc, request_logs).encode())
            say(f"nginx (pid {nginx.pid}): " + where.format(nginx.port, nginx.read_weight()))
            wait()
        say("nginx stopped")
    else:
        router = WeightedRouter(
            opts.triton, spec.served, spec.stable, spec.canary, opts.weight, opts.port, opts.triton_grpc
        )
        with router:
            record("local", router.url)
            say(f"router: http://{router.url}/v2/models/{spec.served}/… (canary {spec.canary} at {opts.weight}%)")
            wait()


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


@dataclasses.dataclass(frozen=True)
class ServedArms:
    triton: str  # host:port of Triton's HTTP endpoint
    triton_grpc: str
    stable: str  # Triton model names
    canary: str
    pid: int
    request_logs: dict[str, str]  # arm -> the served model's per-request log (ITL, output tokens)


@contextmanager
def serve_measured_builds(pf: PipelineFile, store: ArtifactStore, workdir: Path) -> Iterator[ServedArms]:
    """Triton serving the pipeline's measured builds until the block ends (stopped by PID)."""
    config = pf.config
    if config.serve.triton != "local":
        raise BadInputError(
            f"{pf.path}: serve.triton is {config.serve.triton!r}: gates starts Triton itself only for "
            "serve.triton: local; pass --triton HOST:PORT with --stable and --canary for that server"
        )
    builds = recall(store, config)
    if builds is None:
        raise BadInputError(
            f"{pf.path}: no builds of this pipeline's config in the artifact store {store.root}: run "
            f"`gates run {pf.path}` first (the canary serves exactly the builds the gate measured)"
        )
    logs = {"stable": str(workdir / "stable.requests.jsonl"), "canary": str(workdir / "canary.requests.jsonl")}
    extra = {"baseline": {"request_log": logs["stable"]}, "candidate": {"request_log": logs["canary"]}}
    warm = start_builds(config, builds, workdir, extra)
    try:
        server = warm.ready()
        if server.pid is None:
            raise InfraError("tritonserver did not start")
        serve = config.serve
        yield ServedArms(server.url, server.grpc_url, serve.baseline_model, serve.candidate_model, server.pid, logs)
    finally:
        warm.close()
