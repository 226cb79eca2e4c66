"""Content-addressed artifact store.

An artifact directory is named by the digest of its *inputs* (config section, parent digest,
dataset digests, tool versions), so an unchanged pipeline finds its outputs again, and holds a
``manifest.json`` listing its *outputs* with their sha256, which is verified before reuse: a
corrupted file means the artifact is rebuilt, never served.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from importlib.metadata import version
from pathlib import Path
from typing import Any

from gates.errors import InfraError

MANIFEST = "manifest.json"


@dataclasses.dataclass(frozen=True)
class ModelRef:
    """A model artifact: where it is and the digest of what is in it."""

    role: str  # baseline | candidate
    path: Path
    digest: str
    format: str  # quantization format, "none" for the base model
    quant_path: str  # "real" | "simulated"


@dataclasses.dataclass(frozen=True)
class EngineBuild:
    backend: str
    model: ModelRef
    serve_path: Path  # what the Triton model loads
    digest: str  # the store's key: a digest of the build's *inputs* (model digest, options, versions)
    reused: bool
    latency_representative: bool
    latency_note: str
    recipe: str = ""  # what the engine itself did to the model (e.g. its own int8 quantization)
    device: str = "cpu"  # where the served model runs: cpu | cuda (Triton's instance group follows it)
    dtype: str = "fp32"  # the float dtype of its non-quantized parts: fp32 | bf16 | fp16
    # what the engine itself quantized, when it did (e.g. onnxruntime-genai's builder): format, by, options
    quantization: dict[str, Any] = dataclasses.field(default_factory=dict)
    # sha256 over every file of serve_path (what Triton's model loads): the identity of what is
    # served, set by gates.engines.base.identify after the build; "" until then (never promoted)
    build_digest: str = ""


@dataclasses.dataclass(frozen=True)
class Artifact:
    kind: str
    digest: str
    path: Path
    manifest: Mapping[str, Any]
    reused: bool


def canonical_digest(obj: Any) -> str:
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tree_files(root: Path) -> dict[str, str]:
    """sha256 of every file below ``root`` (manifest excluded), keyed by relative path."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name != MANIFEST:
            out[p.relative_to(root).as_posix()] = file_sha256(p)
    return out


def tree_digest(root: Path) -> str:
    return canonical_digest(tree_files(root))


class ArtifactStore:
    def __init__(self, root: Path):
        self.root = root

    def path_for(self, kind: str, digest: str) -> Path:
        return self.root / "store" / kind / digest[:32]

    def get_or_build(
        self,
        kind: str,
        inputs: Mapping[str, Any],
        build: Callable[[Path], Mapping[str, Any]],
    ) -> Artifact:
        """Return the artifact for ``inputs``, building it with ``build(tmp_dir)`` on a miss.

        ``build`` writes its outputs into the directory it is given and returns extra manifest
        fields (e.g. what it measured). A hit whose files no longer match the manifest is moved
        aside and rebuilt.
        """
        digest = canonical_digest({"kind": kind, "inputs": inputs})
        target = self.path_for(kind, digest)
        if target.exists():
            problem = self.verify(target)
            if problem is None:
                manifest = json.loads((target / MANIFEST).read_text())
                return Artifact(kind, manifest["digest"], target, manifest, reused=True)
            move_aside(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        try:
            started = time.monotonic()
            extra = dict(build(tmp))
            outputs = tree_files(tmp)
            if not outputs:
                raise InfraError(f"building {kind} artifact produced no files")
            manifest = {
                "kind": kind,
                "digest": digest,
                "inputs": inputs,
                "outputs": outputs,
                "output_digest": canonical_digest(outputs),
                "build_wall_s": round(time.monotonic() - started, 3),
                "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                **extra,
            }
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str))
            os.rename(tmp, target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return Artifact(kind, digest, target, manifest, reused=False)

    @staticmethod
    def verify(path: Path) -> str | None:
        """None when every output listed in the manifest is present and unchanged, else why not."""
        try:
            manifest = json.loads((path / MANIFEST).read_text())
            expected: dict[str, str] = manifest["outputs"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            return f"unreadable manifest: {exc}"
        for rel, sha in expected.items():
            f = path / rel
            if not f.is_file():
                return f"missing output {rel}"
            if file_sha256(f) != sha:
                return f"output {rel} does not match its recorded sha256"
        return None


def write_manifest(path: Path, kind: str, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A manifest for a directory built outside the store (the builtin base model): what
    :meth:`ArtifactStore.verify` checks before every use."""
    outputs = tree_files(path)
    manifest = {
        "kind": kind,
        "outputs": outputs,
        "output_digest": canonical_digest(outputs),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **(extra or {}),
    }
    (path / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str))
    return manifest


def move_aside(path: Path) -> Path:
    """A corrupt artifact is kept for inspection (``gates artifacts gc`` removes it), never served."""
    aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
    os.rename(path, aside)
    return aside


def changed_since(path: Path, digest: str) -> str | None:
    """None when ``path`` still holds exactly what was digested; else what changed."""
    if not path.is_dir():
        return f"{path} is gone"
    return None if tree_digest(path) == digest else f"the files in {path} changed"


@dataclasses.dataclass(frozen=True)
class Entry:
    kind: str
    path: Path
    manifest: Mapping[str, Any] | None
    size_bytes: int


def list_entries(root: Path) -> list[Entry]:
    """Every artifact directory under ``root/store``, and the cached base models under
    ``root/models`` (corrupt copies included, manifest None if unreadable)."""
    out: list[Entry] = []
    kinds = [p for p in (root / "store").iterdir() if p.is_dir()] if (root / "store").is_dir() else []
    if (root / "models").is_dir():
        kinds.append(root / "models")
    for kind_dir in sorted(kinds):
        for art in sorted(p for p in kind_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            try:
                manifest: Mapping[str, Any] | None = json.loads((art / MANIFEST).read_text())
            except (OSError, ValueError):
                manifest = None
            size = sum(f.stat().st_size for f in art.rglob("*") if f.is_file())
            out.append(Entry(kind_dir.name, art, manifest, size))
    return out


def referenced_paths(root: Path) -> set[Path]:
    """Artifact directories that some recorded run served or built on (its report names them: the
    model artifacts and the engine builds that were served)."""
    refs: set[Path] = set()
    for report in (root / "runs").glob("*/report.json"):
        try:
            data = json.loads(report.read_text())
        except (OSError, ValueError):
            continue
        for key in ("baseline", "candidate"):
            for field in ("path", "build_path"):
                path = (data.get(key) or {}).get(field)
                if path:
                    refs.add(Path(path).resolve())
    return refs


def gc(root: Path, keep_days: float, dry_run: bool, now: float | None = None) -> list[Entry]:
    """Remove corrupt copies, and artifacts older than ``keep_days`` that no run references."""
    now = time.time() if now is None else now
    refs = referenced_paths(root)
    doomed = []
    for e in list_entries(root):
        corrupt = ".corrupt-" in e.path.name
        age_days = (now - e.path.stat().st_mtime) / 86400
        base_model = e.kind == "models"  # rebuilt only by training again: kept unless corrupt
        if corrupt or (not base_model and age_days > keep_days and e.path.resolve() not in refs):
            doomed.append(e)
            if not dry_run:
                shutil.rmtree(e.path)
    return doomed


def tool_versions() -> dict[str, str]:
    """The versions of the tools that build artifacts: part of every cache key and every report."""
    out = {"python": platform.python_version()}
    for dist in ("torch", "transformers", "nvidia-modelopt"):
        try:
            out[dist] = version(dist)
        except Exception:
            out[dist] = "absent"
    return out
