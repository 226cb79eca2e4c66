"""Warm start: remembered builds load on a real tritonserver before deploy; anything else falls back or fails closed."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

from gates.artifacts import ArtifactStore
from gates.config import load_pipeline
from gates.config.schema import Pipeline
from gates.engines import EngineBuild, ModelRef
from gates.errors import InfraError
from gates.triton.client import TextModelClient
from gates.triton.warm import hint_path, recall, remember, same_serving, warm_start

CFG = "name: warm\nmodel:\n  source: builtin:tiny-llama\ngolden:\n  suites: [golden_prompts/demo.jsonl]\n"


def build_of(path: Path, role: str, digest: str = "d1", reused: bool = True) -> EngineBuild:
    return EngineBuild("torch", ModelRef(role, path, "m-" + digest, "none", "real"), path, digest, reused, True, "")


@pytest.fixture()
def config(write_pipeline: Callable[..., Path]) -> Pipeline:
    return load_pipeline(write_pipeline(CFG)).config


def test_remembered_builds_come_back_equal(config: Pipeline, tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "a")
    builds = {"baseline": build_of(tmp_path, "baseline"), "candidate": build_of(tmp_path, "candidate", "d2")}
    assert recall(store, config) is None  # a first run has nothing to start early
    remember(store, config, builds)
    assert recall(store, config) == builds
    other = config.model_copy(update={"engine": config.engine.model_copy(update={"threads": 3})})
    assert recall(store, other) is None  # another serving config never uses this hint
    hint_path(store, config).write_text("{not json")
    assert recall(store, config) is None


def test_a_hint_whose_files_are_gone_is_ignored(config: Pipeline, tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "a")
    gone = tmp_path / "gone"
    remember(store, config, {"baseline": build_of(tmp_path, "baseline"), "candidate": build_of(gone, "candidate")})
    assert recall(store, config) is None


def test_only_a_verified_cache_hit_of_the_same_artifact_is_served_warm(tmp_path: Path) -> None:
    remembered = build_of(tmp_path, "baseline")
    assert same_serving(remembered, dataclasses.replace(remembered, latency_note="other words"))
    assert not same_serving(remembered, dataclasses.replace(remembered, reused=False))  # rebuilt (e.g. corrupt)
    assert not same_serving(remembered, dataclasses.replace(remembered, digest="d2"))
    assert not same_serving(remembered, dataclasses.replace(remembered, serve_path=tmp_path / "x"))
    other_model = dataclasses.replace(remembered.model, digest="m-other")
    assert not same_serving(remembered, dataclasses.replace(remembered, model=other_model))


@pytest.mark.integration
def test_warm_start_serves_the_remembered_builds(
    config: Pipeline, tiny_model: Path, tmp_path: Path, no_leaked_servers: None
) -> None:
    store = ArtifactStore(tmp_path / "a")
    builds = {"baseline": build_of(tiny_model, "baseline"), "candidate": build_of(tiny_model, "candidate")}
    remember(store, config, builds)
    warm = warm_start(config, store, tmp_path / "triton")
    assert warm is not None
    try:
        assert warm.matches(builds)
        server = warm.ready()
        client = TextModelClient(server.grpc_url)
        try:
            for name in ("baseline", "candidate"):
                assert client.generate(name, "Hello", 2)
        finally:
            client.close()
    finally:
        warm.close()
        warm.close()  # safe twice (deploy's fallback and the run's resources may both call it)
    assert warm.server.pid is None


@pytest.mark.integration
def test_a_failed_warm_start_is_an_infra_error(
    config: Pipeline, tiny_model: Path, tmp_path: Path, no_leaked_servers: None
) -> None:
    store = ArtifactStore(tmp_path / "a")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{}")  # not a model: the stub fails to load it
    builds = {"baseline": build_of(tiny_model, "baseline"), "candidate": build_of(broken, "candidate")}
    remember(store, config, builds)
    warm = warm_start(config, store, tmp_path / "triton")
    assert warm is not None
    try:
        with pytest.raises(InfraError, match="candidate"):
            warm.ready()
    finally:
        warm.close()


def test_a_new_server_in_the_warm_servers_folder_replaces_a_stub_still_running(
    tmp_path: Path, no_leaked_servers: None
) -> None:
    """The warm server's stubs, SIGKILLed a moment earlier, may still be executing the copied stub
    when deploy starts another server in the same folder: copying over it was "Text file busy"
    (Errno 26), INCONCLUSIVE on every try. The backend files are replaced, never written in place."""
    import shutil
    import subprocess

    from gates.triton.server import TritonServer, find_tritonserver

    _, _, stub = find_tritonserver()
    busy = tmp_path / "triton" / "backends" / "python" / stub.name
    busy.parent.mkdir(parents=True)
    shutil.copy2("/bin/sleep", busy)
    still_running = subprocess.Popen([str(busy), "60"])  # what an orphaned stub does to the file
    try:
        server = TritonServer(tmp_path / "triton" / "models", tmp_path / "triton", 60)
        try:
            server.start()
            assert busy.read_bytes() == stub.read_bytes()
        finally:
            server.stop()
    finally:
        still_running.kill()
        still_running.wait()
