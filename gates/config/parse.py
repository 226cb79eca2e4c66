"""YAML loading with errors that name the file, the key path and the line.

PyYAML's composer keeps a mark on every node; we walk the node tree once to build both the
plain data and an index ``key path -> line`` so that a pydantic error location can be mapped
back to where the user typed it (dvc and pre-commit do the same for their configs).
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from gates.config.schema import Pipeline
from gates.errors import ConfigError

KeyPath = tuple[str | int, ...]

# Bounds on what a config may cost to read: a pipeline is a few KB; anything near these is an
# attack (a YAML "billion laughs" expands aliases exponentially) or a mistake, never a config.
MAX_CONFIG_BYTES = 1_000_000
MAX_NODES = 50_000  # values after alias expansion
MAX_DEPTH = 32


@dataclasses.dataclass(frozen=True)
class PipelineFile:
    """A validated pipeline config plus where it came from."""

    config: Pipeline
    path: Path
    root: Path  # relative paths in the config are resolved against this directory
    text: str
    lines: dict[KeyPath, int] = dataclasses.field(default_factory=dict, compare=False, repr=False)

    def where(self, *keys: str | int) -> str:
        """``file:line`` of a key path, for errors found after loading (e.g. a bad model.source)."""
        return f"{self.path}:{_line_for(tuple(keys), self.lines)}"

    def resolve(self, relative: str) -> Path:
        p = Path(relative)
        return p if p.is_absolute() else (self.root / p)


def project_root_for(path: Path) -> Path:
    """Paths in ``pipelines/x.yaml`` are relative to the folder holding ``pipelines/``."""
    parent = path.resolve().parent
    return parent.parent if parent.name == "pipelines" else parent


def load_pipeline(path: str | Path) -> PipelineFile:
    p = Path(path)
    try:
        with p.open("rb") as f:  # a bounded read: a config that never ends (a FIFO, /dev/zero) is refused
            raw = f.read(MAX_CONFIG_BYTES + 1)
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # ValueError: a NUL in the path
        raise ConfigError(f"{p}: cannot read pipeline config: {exc}", str(p)) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{p}: the pipeline config is larger than {MAX_CONFIG_BYTES} bytes", str(p))
    return parse_pipeline(text, p)


def parse_pipeline(text: str, path: Path) -> PipelineFile:
    data, lines = _compose(text, path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: a pipeline config must be a mapping of keys, got {type(data).__name__}")
    try:
        config = Pipeline.model_validate(data)
    except ValidationError as exc:
        first = tuple(p for p in exc.errors()[0]["loc"] if isinstance(p, (str, int)))
        raise ConfigError(
            _format_validation(exc, path, lines), str(path), _line_for(_trim_to_known(first, lines), lines)
        ) from None
    return PipelineFile(config=config, path=path, root=project_root_for(path), text=text, lines=lines)


def _compose(text: str, path: Path) -> tuple[Any, dict[KeyPath, int]]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:  # PyYAML's composer recurses once per nesting level
        raise ConfigError(f"{path}: invalid YAML: nested deeper than {MAX_DEPTH} levels", str(path)) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ConfigError(
            f"{where}: invalid YAML: {exc.problem or exc}", str(path), mark.line + 1 if mark else None
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    if node is None:
        raise ConfigError(f"{path}:1: the pipeline config is empty")
    lines: dict[KeyPath, int] = {}
    return _to_data(node, (), lines, path, [0]), lines


def _to_data(node: yaml.Node, at: KeyPath, lines: dict[KeyPath, int], path: Path, count: list[int]) -> Any:
    line = node.start_mark.line + 1
    count[0] += 1
    if count[0] > MAX_NODES:  # aliases are expanded here: bound the result, not the text
        raise ConfigError(
            f"{path}:{line}: at key {_dotted(at) or '(top)'}: the config expands to more than {MAX_NODES} values "
            "(YAML aliases repeated without bound?)",
            str(path),
            line,
        )
    if len(at) > MAX_DEPTH:
        raise ConfigError(
            f"{path}:{line}: at key {_dotted(at)}: nested deeper than {MAX_DEPTH} levels", str(path), line
        )
    lines.setdefault(at, line)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # '<<: *base' would hide where a value came from
                raise ConfigError(
                    f"{path}:{key_node.start_mark.line + 1}: at key {_dotted(at) or '(top)'}: YAML merge keys "
                    "('<<') are not supported; write the keys out",
                    str(path),
                    key_node.start_mark.line + 1,
                )
            key = _scalar(key_node, path)
            if not isinstance(key, str):
                raise ConfigError(
                    f"{path}:{key_node.start_mark.line + 1}: at key {_dotted(at) or '(top)'}: keys must be strings"
                )
            if key in out:
                raise ConfigError(
                    f"{path}:{key_node.start_mark.line + 1}: duplicate key {_dotted((*at, key))!r} "
                    f"(first at line {lines[(*at, key)]})"
                )
            lines[(*at, key)] = key_node.start_mark.line + 1
            out[key] = _to_data(value_node, (*at, key), lines, path, count)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_data(item, (*at, i), lines, path, count) for i, item in enumerate(node.value)]
    return _scalar(node, path)


def _scalar(node: yaml.Node, path: Path) -> Any:
    if not isinstance(node, yaml.ScalarNode):  # a mapping or list used as a key
        line = node.start_mark.line + 1
        raise ConfigError(f"{path}:{line}: keys must be strings", str(path), line)
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    # an unknown tag, a bad !!int or !!timestamp; PyYAML indexes an empty explicit `!!int` (IndexError)
    except (yaml.YAMLError, ValueError, OverflowError, IndexError) as exc:
        line = node.start_mark.line + 1
        detail = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}:{line}: invalid YAML value: {detail}", str(path), line) from None
    finally:
        loader.dispose()


def _dotted(at: KeyPath) -> str:
    out = ""
    for part in at:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _format_validation(exc: ValidationError, path: Path, lines: dict[KeyPath, int]) -> str:
    msgs = []
    for err in exc.errors():
        loc: KeyPath = tuple(p for p in err["loc"] if isinstance(p, (str, int)))
        # pydantic puts union-member names and validator tags into loc; keep real keys only
        loc = _trim_to_known(loc, lines)
        detail = err["msg"].removeprefix("Value error, ")
        if not loc:  # a check across sections names its key first ("engine.backend '...' ...")
            named = tuple(re.split(r"[.]", detail.split(" ", 1)[0]))
            loc = named if named in lines else loc
        line = _line_for(loc, lines)
        key = _dotted(loc) or "(top level)"
        if err["type"] == "extra_forbidden":
            detail = "unknown key (check the spelling; every key: docs/config-defaults.md)"
        elif err["type"] == "missing":
            detail = "required key is missing"
        elif "input" in err and err["type"] not in ("model_type",) and not isinstance(err["input"], (dict, list)):
            detail += f" (got {_shown(err['input'])})"
        msgs.append(f"{path}:{line}: invalid pipeline config\n==> At key: {key}\n==> {detail}")
    return "\n".join(msgs)


def _shown(value: Any) -> str:
    """A rejected value as the error quotes it: credentials in a URL are masked (the message is
    printed and annotated on the PR) and a long value is cut."""
    text = mask_url_credentials(repr(value))
    return text if len(text) <= 200 else text[:200] + "…"


def mask_url_credentials(text: str) -> str:
    """``scheme://user:pass@`` becomes ``scheme://***@``, in one pass over ``text``.

    What ``(?i)([a-z][a-z0-9+.-]*://)[^/@\\s]*@`` masks, without its backtracking (66 s for a
    40 kB value): the userinfo runs after each ``://`` never overlap, so each character is looked
    at a bounded number of times.
    """
    out: list[str] = []
    pos = 0
    while (sep := text.find("://", pos)) != -1:
        start = sep  # the scheme: letters, digits, + . - back from '://', one letter at least
        while start > pos and (text[start - 1].isalnum() or text[start - 1] in "+.-"):
            start -= 1
        has_scheme = any(c.isalpha() for c in text[start:sep])
        end = sep + 3
        while end < len(text) and text[end] not in "/@" and not text[end].isspace():
            end += 1
        if has_scheme and end < len(text) and text[end] == "@":
            out.append(text[pos : sep + 3] + "***@")
            pos = end + 1
        else:
            out.append(text[pos : sep + 3])
            pos = sep + 3
    out.append(text[pos:])
    return "".join(out)


def _trim_to_known(loc: KeyPath, lines: dict[KeyPath, int]) -> KeyPath:
    # Drop pydantic-internal segments ("function-after[...]", "int", "tuple[int, int]") that are
    # not keys of the document, keeping the last segment if it names a missing key.
    kept: list[str | int] = []
    for i, part in enumerate(loc):
        candidate = (*kept, part)
        if candidate in lines or (i == len(loc) - 1 and isinstance(part, str) and "[" not in part):
            kept.append(part)
    return tuple(kept)


def _line_for(loc: KeyPath, lines: dict[KeyPath, int]) -> int:
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return 1
