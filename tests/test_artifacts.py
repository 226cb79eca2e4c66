from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

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
