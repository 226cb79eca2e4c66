"""Warm start: Triton and both models start while preflight, optimize and build run.

Starting the server and loading the models (a Python stub per model, its engine, its tokenizer) is
most of what a cached gate run spends outside its measurements. The deploy stage remembers what it
served (both engine builds) in the artifact store, under a key of the config that decides them; the
next run with that key launches ``tritonserver`` first thing and loads the remembered builds in a
background thread while the earlier stages run.

Deploy uses that server only when the build stage, which verified its artifacts, produced exactly
the remembered builds; otherwise it stops it and deploys as usual. For builds that match, a failure
in the background (the server died, a model did not load) is the deploy stage's InfraError, never
a fallback. The server is stopped on every exit path: ``ctx.resources`` holds :meth:`close`.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from gates.artifacts import ArtifactStore, canonical_digest
from gates.config.schema import Pipeline
from gates.engines import ENGINES, EngineBuild, ModelRef
from gates.errors import InfraError
from gates.triton.repository import serving, set_parameters
from gates.triton.server import TritonServer

HINT_DIR = "warm"


def warm_key(config: Pipeline) -> str:
    """What decides the served builds and how they are served: the model, its optimization, the
    engine and the serving section (a run with another key never uses this hint)."""
    parts = {k: getattr(config, k).model_dump(mode="json") for k in ("model", "optimize", "engine", "serve")}
    return canonical_digest(parts)[:32]


def hint_path(store: ArtifactStore, config: Pipeline) -> Path:
    return store.root / HINT_DIR / f"{warm_key(config)}.json"


def _build_json(build: EngineBuild) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(json.dumps(dataclasses.asdict(build), default=str))
    return data


def _build_of(data: dict[str, Any]) -> EngineBuild:
    model = ModelRef(**{**data["model"], "path": Path(data["model"]["path"])})
    return EngineBuild(**{**data, "model": model, "serve_path": Path(data["serve_path"])})


def remember(store: ArtifactStore, config: Pipeline, builds: dict[str, EngineBuild]) -> None:
    """Record what deploy served, for the next run's warm start (a write that fails costs nothing)."""
    path = hint_path(store, config)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({arm: _build_json(b) for arm, b in builds.items()}, indent=2))
        tmp.replace(path)
    except OSError:
        pass


def recall(store: ArtifactStore, config: Pipeline) -> dict[str, EngineBuild] | None:
    """The builds the last deploy with this config served, when they are still in the store."""
    try:
        data = json.loads(hint_path(store, config).read_text())
        builds = {arm: _build_of(data[arm]) for arm in ("baseline", "candidate")}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if not all(b.serve_path.exists() and b.backend in ENGINES for b in builds.values()):
        return None
    return builds


def same_serving(remembered: EngineBuild, built: EngineBuild) -> bool:
    """``built`` (this run's build stage) serves what ``remembered`` loaded: the same engine, path and
    digests, and a cache hit, so the files the server read before the build stage verified them are
    the ones it verified (a rebuilt artifact, e.g. one found corrupt, is never served warm)."""
    fields = ("backend", "serve_path", "digest")
    return (
        built.reused
        and all(getattr(remembered, f) == getattr(built, f) for f in fields)
        and remembered.model.digest == built.model.digest
    )


class WarmServer:
    """A server launched now, its models loading in a background thread."""

    def __init__(self, server: TritonServer, models: dict[str, str], builds: dict[str, EngineBuild]):
        self.server = server
        self.models = models  # arm -> Triton model name
        self.builds = builds  # arm -> what is loading
        self.error: BaseException | None = None
        self.cancelled = False
        self.thread = threading.Thread(target=self._load, name="gates-warm-start", daemon=True)

    def _load(self) -> None:
        try:
            self.server.wait_live()
            if not self.cancelled:
                load_concurrently(self.server, tuple(self.models.values()))
        except BaseException as exc:  # kept for deploy; never raised in this thread
            self.error = exc

    def matches(self, builds: dict[str, EngineBuild]) -> bool:
        return all(same_serving(self.builds[arm], builds[arm]) for arm in ("baseline", "candidate"))

    def ready(self) -> TritonServer:
        """Wait for the background start; its failure is an InfraError of the caller (deploy)."""
        self.thread.join()
        if self.error is not None:
            if isinstance(self.error, InfraError):
                raise self.error
            raise InfraError(f"the warm start of tritonserver failed: {type(self.error).__name__}: {self.error}")
        self.server.check_alive()
        return self.server

    def close(self) -> None:
        """Stop the server (which ends a load in flight), then wait for the thread. Safe to call twice."""
        self.cancelled = True
        self.server.stop()
        self.thread.join()
        self.server.stop()


def load_concurrently(server: TritonServer, names: tuple[str, ...]) -> None:
    """Load the models at once, one request each: Triton loads them in parallel, so a cached run
    waits for the slowest model's start-up (its Python stub, engine and tokenizer), not their sum."""
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        for future in [pool.submit(server.load_model, name) for name in names]:
            future.result()  # the first failure propagates; the pool waits for the others


def local_server(repo: Path, workdir: Path, startup_timeout_s: float, builds: dict[str, EngineBuild]) -> TritonServer:
    """The local tritonserver for these builds (not started): GPU gauges only when one of them runs on the GPU."""
    return TritonServer(repo, workdir, startup_timeout_s, gpu_metrics=any(b.device == "cuda" for b in builds.values()))


def warm_start(config: Pipeline, store: ArtifactStore, workdir: Path) -> WarmServer | None:
    """Launch tritonserver and start loading the remembered builds; None when there is nothing to
    remember (a first run, another config) or the server is not local.

    Call it from the main thread (see :meth:`TritonServer.launch`) and hand :meth:`WarmServer.close`
    to the run's resources at once.
    """
    builds = recall(store, config) if config.serve.triton == "local" else None
    if builds is None:
        return None
    try:
        return start_builds(config, builds, workdir)
    except Exception:  # nothing started; deploy starts the server itself and reports what fails
        return None


def start_builds(
    config: Pipeline,
    builds: dict[str, EngineBuild],
    workdir: Path,
    extra: Mapping[str, Mapping[str, str]] | None = None,
) -> WarmServer:
    """Launch tritonserver serving ``builds`` under the pipeline's model names and start loading
    them (raises when the server cannot be launched; :meth:`WarmServer.ready` waits for the load).
    ``extra``: more model parameters per arm (e.g. the canary's ``request_log``)."""
    serve = config.serve
    models = {"baseline": serve.baseline_model, "candidate": serve.candidate_model}
    repo = workdir / "models"
    threads = config.engine.threads_per_model()
    for arm, build in builds.items():
        params = {**serving(serve), **(extra or {}).get(arm, {})}
        set_parameters(ENGINES[build.backend].write_serving(repo, models[arm], build, threads), params)
    server = local_server(repo, workdir, serve.startup_timeout_s, builds)
    warm = WarmServer(server, models, builds)
    try:
        server.launch()
    except BaseException:
        server.stop()
        raise
    warm.thread.start()
    return warm
