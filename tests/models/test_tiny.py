"""The cached builtin model is verified against its manifest before every use."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gates.artifacts import ArtifactStore
from gates.models import tiny


def test_corrupted_cached_base_model_is_rebuilt_not_used(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builds: list[Path] = []

    def build(out: Path) -> None:  # the real recipe, without training again: copy the session's model
        builds.append(out)
        for f in tiny_model.iterdir():
            if f.name != "manifest.json":
                shutil.copy(f, out / f.name)

    monkeypatch.setattr(tiny, "build_tiny_llama", build)
    first = tiny.ensure_tiny_llama(tmp_path)
    assert ArtifactStore.verify(first) is None and len(builds) == 1
    assert tiny.ensure_tiny_llama(tmp_path) == first and len(builds) == 1  # verified, reused
    weights = bytearray((first / "model.safetensors").read_bytes())
    weights[len(weights) // 2] ^= 0x55
    (first / "model.safetensors").write_bytes(bytes(weights))
    lines: list[str] = []
    again = tiny.ensure_tiny_llama(tmp_path, lines.append)
    assert again == first and len(builds) == 2 and ArtifactStore.verify(again) is None
    assert any("does not match its manifest" in line for line in lines)
    assert list((tmp_path / "models").glob("tiny-llama-*.corrupt-*")), "the corrupt copy is kept aside"
