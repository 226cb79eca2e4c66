from __future__ import annotations

import contextlib
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from gates.artifacts import MANIFEST, ArtifactStore, canonical_digest, tree_digest


def _builder(calls: list[int], payload: bytes = b"weights") -> Any:
    def build(out: Path) -> dict[str, Any]:
        calls.append(1)
        (out / "model.bin").write_bytes(payload)
        (out / "sub").mkdir()
        (out / "sub" / "config.json").write_text("{}")
        return {"measured": 1.5}

    return build


def test_same_inputs_reuse_the_artifact(tmp_path: Path) -> None:
    store, calls = ArtifactStore(tmp_path), []
    a = store.get_or_build("model", {"x": 1}, _builder(calls))
    b = store.get_or_build("model", {"x": 1}, _builder(calls))
    assert calls == [1]
    assert not a.reused and b.reused
    assert a.path == b.path and a.digest == b.digest
    manifest = json.loads((a.path / MANIFEST).read_text())
    assert set(manifest["outputs"]) == {"model.bin", "sub/config.json"}
    assert manifest["measured"] == 1.5 and manifest["inputs"] == {"x": 1}


def test_different_inputs_build_a_new_artifact(tmp_path: Path) -> None:
    store, calls = ArtifactStore(tmp_path), []
    a = store.get_or_build("model", {"x": 1}, _builder(calls))
    b = store.get_or_build("model", {"x": 2}, _builder(calls))
    assert calls == [1, 1] and a.path != b.path


def test_corrupted_output_is_detected_and_rebuilt(tmp_path: Path) -> None:
    store, calls = ArtifactStore(tmp_path), []
    a = store.get_or_build("model", {"x": 1}, _builder(calls))
    (a.path / "model.bin").write_bytes(b"tampered")
    assert ArtifactStore.verify(a.path) == "output model.bin does not match its recorded sha256"
    b = store.get_or_build("model", {"x": 1}, _builder(calls))
    assert calls == [1, 1] and not b.reused
    assert (b.path / "model.bin").read_bytes() == b"weights"
    assert list(a.path.parent.glob("*.corrupt-*")), "the corrupted copy is kept aside for inspection"


def test_missing_output_is_detected(tmp_path: Path) -> None:
    store, calls = ArtifactStore(tmp_path), []
    a = store.get_or_build("model", {"x": 1}, _builder(calls))
    (a.path / "sub" / "config.json").unlink()
    assert ArtifactStore.verify(a.path) == "missing output sub/config.json"


def test_failed_build_leaves_nothing(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)

    def broken(out: Path) -> dict[str, Any]:
        (out / "half").write_text("x")
        raise RuntimeError("boom")

    with contextlib.suppress(RuntimeError):
        store.get_or_build("model", {"x": 1}, broken)
    assert not any((tmp_path / "store" / "model").iterdir())


def test_digests_are_canonical(tmp_path: Path) -> None:
    assert canonical_digest({"a": 1, "b": [1, 2]}) == canonical_digest({"b": [1, 2], "a": 1})
    (tmp_path / "f").write_text("1")
    d1 = tree_digest(tmp_path)
    (tmp_path / "f").write_text("2")
    assert tree_digest(tmp_path) != d1


def test_gc_removes_corrupt_and_old_unreferenced(tmp_path: Path) -> None:
    import os
    import time

    from gates.artifacts import gc, list_entries

    store, calls = ArtifactStore(tmp_path), []
    kept = store.get_or_build("model", {"x": 1}, _builder(calls))
    old = store.get_or_build("model", {"x": 2}, _builder(calls))
    used = store.get_or_build("model", {"x": 3}, _builder(calls))
    (kept.path.parent / f"{kept.path.name}.corrupt-1").mkdir()
    long_ago = time.time() - 30 * 86400
    for art in (old, used):
        os.utime(art.path, (long_ago, long_ago))
    run = tmp_path / "runs" / "r1"
    run.mkdir(parents=True)
    (run / "report.json").write_text(json.dumps({"candidate": {"path": str(used.path)}}))
    assert len(list_entries(tmp_path)) == 4
    doomed = gc(tmp_path, keep_days=14, dry_run=True)
    assert {e.path.name for e in doomed} == {old.path.name, f"{kept.path.name}.corrupt-1"}
    assert len(list_entries(tmp_path)) == 4, "dry run removes nothing"
    gc(tmp_path, keep_days=14, dry_run=False)
    assert {e.path for e in list_entries(tmp_path)} == {kept.path, used.path}


def test_artifacts_cli_verify_exit_codes(tmp_path: Path) -> None:
    import subprocess
    import sys

    store, calls = ArtifactStore(tmp_path), []
    art = store.get_or_build("model", {"x": 1}, _builder(calls))
    cmd = [sys.executable, "-m", "gates.cli", "artifacts", "verify", "--artifacts", str(tmp_path)]
    ok = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and f"ok   model/{art.path.name}" in ok.stdout
    (art.path / "model.bin").write_bytes(b"x")
    bad = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 3 and "does not match its recorded sha256" in bad.stdout


# -- issue 17: the base model is an artifact too; what was measured must still exist -------------
def _fake_base_model(root: Path) -> Path:
    from gates.artifacts import write_manifest
    from gates.models.tiny import recipe_key

    model = root / "models" / f"tiny-llama-{recipe_key()}"
    model.mkdir(parents=True)
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"\x00" * 4096)
    write_manifest(model, "model")
    return model


def test_artifacts_verify_checks_the_cached_base_model(tmp_path: Path) -> None:
    import subprocess
    import sys

    model = _fake_base_model(tmp_path)
    cmd = [sys.executable, "-m", "gates.cli", "artifacts", "verify", "--artifacts", str(tmp_path)]
    ok = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and f"ok   models/{model.name}" in ok.stdout, ok.stdout + ok.stderr
    weights = bytearray((model / "model.safetensors").read_bytes())
    weights[100] ^= 0xFF  # one flipped byte
    (model / "model.safetensors").write_bytes(bytes(weights))
    bad = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 3 and "BAD  models/" in bad.stdout and "model.safetensors" in bad.stdout


def test_an_artifact_deleted_mid_run_makes_it_inconclusive(tmp_path: Path) -> None:
    import shutil

    from gates.artifacts import ModelRef
    from gates.config.parse import parse_pipeline
    from gates.context import RunContext
    from gates.pipeline import run_pipeline
    from gates.record import OptimizeResult

    candidate = tmp_path / "cand"
    candidate.mkdir()
    (candidate / "w.bin").write_bytes(b"w")
    base = ModelRef("baseline", candidate, tree_digest(candidate), "none", "real")
    cand = ModelRef("candidate", candidate, tree_digest(candidate), "int8_sq", "real")

    class Optimized:
        name = "optimize"

        def run(self, ctx: RunContext) -> None:
            ctx.put(OptimizeResult(base, cand, False, 0.0, (), ""))

    class DeletedDuringLoad:
        name = "load"

        def run(self, ctx: RunContext) -> None:
            shutil.rmtree(candidate)

    (tmp_path / "pipelines").mkdir()
    pf = parse_pipeline(
        "name: unit\nmodel:\n  source: builtin:tiny-llama\ngolden:\n  suites: [g.jsonl]\n",
        tmp_path / "pipelines" / "p.yaml",
    )
    out = run_pipeline(pf, tmp_path / "a", tmp_path / "run", lambda s: None, stages=(Optimized(), DeletedDuringLoad()))
    assert out.verdict == "INCONCLUSIVE" and "changed while it was measured" in out.reason and "is gone" in out.reason


@pytest.mark.parametrize("fault", ["deleted", "changed"])
def test_an_engine_build_deleted_or_changed_mid_run_makes_it_inconclusive(tmp_path: Path, fault: str) -> None:
    """Issue 24: only the model artifacts were re-hashed; the engine builds that were served were not."""
    import shutil

    from gates.config.parse import parse_pipeline
    from gates.context import RunContext
    from gates.engines.base import EngineBuild, ModelRef, identify
    from gates.pipeline import run_pipeline
    from gates.record import BuildResult, OptimizeResult

    dirs = {}
    for name in ("model", "baseline-build", "candidate-build"):
        dirs[name] = tmp_path / name
        dirs[name].mkdir()
        (dirs[name] / "w.bin").write_bytes(name.encode())
    model = ModelRef("baseline", dirs["model"], tree_digest(dirs["model"]), "none", "real")
    builds = {
        arm: identify(EngineBuild("onnxruntime-genai", model, dirs[f"{arm}-build"], arm, True, True, ""))
        for arm in ("baseline", "candidate")
    }
    assert builds["candidate"].build_digest == tree_digest(dirs["candidate-build"]) != model.digest
    served_as_is = identify(EngineBuild("torch", model, dirs["model"], "d", True, False, ""))
    assert served_as_is.build_digest == model.digest == tree_digest(dirs["model"])

    class Built:
        name = "build"

        def run(self, ctx: RunContext) -> None:
            ctx.put(OptimizeResult(model, dataclasses.replace(model, role="candidate"), True, 0.0, (), ""))
            ctx.put(BuildResult(builds["baseline"], builds["candidate"], ""))

    class DuringLoad:
        name = "load"

        def run(self, ctx: RunContext) -> None:
            if fault == "deleted":
                shutil.rmtree(dirs["candidate-build"])
            else:
                (dirs["candidate-build"] / "w.bin").write_bytes(b"another build")

    (tmp_path / "pipelines").mkdir()
    pf = parse_pipeline(
        "name: unit\nmodel:\n  source: builtin:tiny-llama\ngolden:\n  suites: [g.jsonl]\n",
        tmp_path / "pipelines" / "p.yaml",
    )
    out = run_pipeline(pf, tmp_path / "a", tmp_path / "run", lambda s: None, stages=(Built(), DuringLoad()))
    assert out.verdict == "INCONCLUSIVE"
    assert "the candidate engine build changed while it was measured" in out.reason, out.reason
    assert str(dirs["candidate-build"]) in out.reason


def test_gc_keeps_the_engine_builds_a_run_served(tmp_path: Path) -> None:
    import os
    import time

    from gates.artifacts import gc

    store, calls = ArtifactStore(tmp_path), []
    served = store.get_or_build("engine-ort-genai", {"x": 1}, _builder(calls))
    os.utime(served.path, (time.time() - 30 * 86400,) * 2)
    run = tmp_path / "runs" / "r1"
    run.mkdir(parents=True)
    (run / "report.json").write_text(json.dumps({"candidate": {"path": "/elsewhere", "build_path": str(served.path)}}))
    assert gc(tmp_path, keep_days=14, dry_run=True) == []
