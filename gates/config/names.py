"""One pipeline name, one file: verdicts are recorded under the file that declared them.

A pipeline's ``name:`` is chosen by whoever writes the file, so a second file declaring
``name: demo`` with loose thresholds could otherwise have its verdict read as demo's. Gate runs are
recorded with the path of their pipeline file (``config_key``) and promotion only accepts runs of
the file it promotes; two files in one pipelines folder declaring the same name are refused.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from gates.config.parse import MAX_CONFIG_BYTES, PipelineFile
from gates.errors import ConfigError


def config_key(path: Path, root: Path) -> str:
    """The pipeline file as the ledger records it: relative to the repository ``root`` (posix)."""
    resolved = path.resolve()
    try:
        return resolved.relative_to(root.resolve()).as_posix()
    except ValueError:
        return resolved.as_posix()


def declared_name(path: Path) -> str | None:
    """The top-level ``name:`` a file declares, or None (unreadable, not YAML, no name)."""
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
        data = yaml.safe_load(raw) if len(raw) <= MAX_CONFIG_BYTES else None
    except (OSError, ValueError, yaml.YAMLError, RecursionError):
        return None
    name = data.get("name") if isinstance(data, dict) else None
    return name if isinstance(name, str) else None


def require_unique_name(pipeline: PipelineFile) -> None:
    """Refuse ``pipeline`` when another pipeline file beside it declares the same ``name:``."""
    here = pipeline.path.resolve()
    others = sorted(
        p
        for pattern in ("*.yaml", "*.yml")
        for p in here.parent.glob(pattern)
        if p.resolve() != here and p.is_file() and declared_name(p) == pipeline.config.name
    )
    if others:
        names = ", ".join(str(p) for p in others)
        raise ConfigError(
            f"{pipeline.path}: name {pipeline.config.name!r} is also declared by {names}: a pipeline name "
            "must be unique (verdicts and promotions are recorded under it); rename one of them",
            str(pipeline.path),
            pipeline.lines.get(("name",)),
        )
