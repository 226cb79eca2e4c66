"""Stable and canary for the local canary, served from the builds the gate measured.

``gates canary serve PIPELINE`` without ``--triton``: the builds the last deploy of this pipeline's
config served (remembered in the artifact store, gates/triton/warm.py) are loaded on a local
tritonserver under the pipeline's model names: the baseline as stable, the candidate as canary.
The canary is therefore byte for byte what the gate measured (its build digest is recorded and
checked at promotion); a pipeline whose builds are not in the store is refused, never rebuilt here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gates.artifacts import ArtifactStore
from gates.config.parse import PipelineFile
from gates.errors import BadInputError, InfraError
from gates.triton.warm import recall, start_builds


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
