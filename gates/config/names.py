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
from gates.errors import BadInputError, ConfigError


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


PIPELINES_DIR = "pipelines"  # where a pipeline *name* is looked up, under the repository root


def pipeline_files_in(root: Path) -> list[Path]:
    """The pipeline files of the repository at ``root``: ``pipelines/*.yaml`` and ``*.yml``."""
    folder = root / PIPELINES_DIR
    return sorted(p for pattern in ("*.yaml", "*.yml") for p in folder.glob(pattern) if p.is_file())


def locate_pipeline(arg: str, root: Path) -> Path:
    """The pipeline file ``arg`` names, for every command: a path to the file, or a pipeline name.

    Anything that looks like a path (a ``/``, a ``.yaml``/``.yml`` suffix) or is an existing file
    is a path, and must be a file: it is never looked up as a name (a path taken as a name found
    nothing, silently). A bare word is the ``name:`` a file in ``<root>/pipelines/`` declares, or
    its file name without the suffix; it must name exactly one file, else it is refused with the
    candidates (exit 2).
    """
    if not arg.strip():
        raise BadInputError("the pipeline argument is empty: give a pipeline file (pipelines/x.yaml) or name")
    given = Path(arg)
    if "/" in arg or given.suffix in (".yaml", ".yml") or given.is_file():
        if given.is_file():
            return given
        what = "is a directory, not a pipeline file" if given.is_dir() else "no such pipeline file"
        raise BadInputError(f"{arg}: {what}")
    files = pipeline_files_in(root)
    matches = [p for p in files if p.stem == arg or declared_name(p) == arg]
    if len(matches) == 1:
        return matches[0]
    folder = root / PIPELINES_DIR
    if not matches:
        known = ", ".join(sorted({declared_name(p) or p.stem for p in files})) or "none"
        raise BadInputError(
            f"{arg!r}: no pipeline file of that name in {folder} (pipelines there: {known}); "
            "give the pipeline file's path or one of those names"
        )
    raise BadInputError(
        f"{arg!r} is ambiguous: {', '.join(str(p) for p in matches)} all answer to it; give the pipeline file's path"
    )
