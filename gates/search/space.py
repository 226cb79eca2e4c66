"""The search space: each combination of the ``search.axes`` values, as a validated pipeline.

An axis must name a key of the pipeline schema (``engine.block_size``), every value must be one
the schema accepts there, each ``search.exclude`` entry must name axes and values of the space, and
there must be at least one candidate. Each problem is a
:class:`~gates.errors.ConfigError` naming the file, the key under ``search.axes`` and its line,
raised before anything is built. A candidate is the user's own YAML with the axis values written
in (``search:`` removed), so its ready-to-use pipeline reads like the one the user wrote.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import itertools
import json
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ValidationError

from gates.config.parse import PipelineFile, parse_pipeline
from gates.config.schema import Pipeline
from gates.config.search import SearchSection
from gates.errors import ConfigError

AXES = ("search", "axes")


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One configuration to measure: its axis values and the pipeline they make."""

    name: str  # the candidate pipeline's name: the search's name and a hash of its values (stable on resume)
    values: dict[str, Any]  # axis -> value, in the order of search.axes
    pipeline: PipelineFile
    yaml: str  # the pipeline file for this candidate, without search:

    def label(self) -> str:
        return ", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in self.values.items())


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    section: SearchSection
    candidates: tuple[Candidate, ...]
    digest: str  # of the pipeline text: a changed search is a new search directory


def _section(pf: PipelineFile) -> SearchSection:
    section = pf.config.search
    if section is None:
        raise ConfigError(
            f"{pf.path}:1: the pipeline has no search: section (gates search needs search.axes; docs/search.md)",
            str(pf.path),
            1,
        )
    return section


def config_field(key: str) -> tuple[type[BaseModel], str] | None:
    """The section model and field name a dotted key names, or None when it is not a config key."""
    model: type[BaseModel] = Pipeline
    parts = key.split(".")
    for i, part in enumerate(parts):
        fields = {f.alias or n: n for n, f in model.model_fields.items()}
        if part not in fields or (i == 0 and part == "search"):
            return None
        name = fields[part]
        if i == len(parts) - 1:
            return model, name
        sub = _section_model(model.model_fields[name].annotation)
        if sub is None:
            return None
        model = sub
    return None


def _section_model(annotation: Any) -> type[BaseModel] | None:
    for t in (annotation, *get_args(annotation)):
        if isinstance(t, type) and issubclass(t, BaseModel):
            return t
    return None


def _refuse(pf: PipelineFile, loc: tuple[str | int, ...], message: str, at: tuple[str, ...] = AXES) -> ConfigError:
    where = pf.where(*at, *loc)
    key = ".".join(at) + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)
    line = int(where.rsplit(":", 1)[1])
    return ConfigError(f"{where}: invalid search space\n==> At key: {key}\n==> {message}", str(pf.path), line)


def _with(data: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(data)
    node = out
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = copy.deepcopy(value)
    return out


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"] if isinstance(p, (str, int)))
    detail = str(err["msg"]).removeprefix("Value error, ")
    return f"{where}: {detail}" if where else detail


def _name(base: str, values: dict[str, Any]) -> str:
    tag = hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return f"{base[:54]}-{tag}"


EXCLUDE = ("search", "exclude")


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def _excluded(pf: PipelineFile, section: SearchSection, combo: tuple[Any, ...]) -> bool:
    """Whether ``combo`` has every value of one search.exclude entry (each entry checked first:
    axes of the space and values listed on them, else exit 2 naming the entry's key and line)."""
    values = dict(zip(section.axes, combo, strict=True))
    hit = False
    for i, entry in enumerate(section.exclude):
        if not entry:
            raise _refuse(pf, (i,), "an exclude entry names no axis", EXCLUDE)
        for key, value in entry.items():
            if key not in section.axes:
                raise _refuse(pf, (i, key), f"{key!r} is not an axis of this search (search.axes)", EXCLUDE)
            if not any(_same(value, v) for v in section.axes[key]):
                raise _refuse(pf, (i, key), f"{value!r} is not one of the values of the axis {key}", EXCLUDE)
        hit = hit or all(_same(values[k], v) for k, v in entry.items())
    return hit


def expand(pf: PipelineFile) -> SearchSpace:
    """Every candidate of ``pf``'s search section, each validated; ConfigError (exit 2) naming the
    file, the axis key and its line for an unknown key, a refused value or an empty space."""
    section = _section(pf)
    if not section.axes:
        raise _refuse(pf, (), "the search space is empty: name at least one axis (a config key and its values)")
    data = yaml.safe_load(pf.text)  # already parsed and bounded by load_pipeline
    data.pop("search", None)
    for key, axis in section.axes.items():
        if config_field(key) is None:
            raise _refuse(
                pf, (key,), f"{key!r} is not a key of the pipeline config (every key: docs/config-defaults.md)"
            )
        if not axis:
            raise _refuse(pf, (key,), "the search space is empty: this axis lists no values")
        if len({json.dumps(v, sort_keys=True, default=str) for v in axis}) != len(axis):  # as _same compares
            raise _refuse(pf, (key,), "this axis lists a value twice")
        for i, value in enumerate(axis):  # each value alone, on the user's pipeline: names the value's line
            try:
                Pipeline.model_validate(_with(data, key, value))
            except ValidationError as exc:
                raise _refuse(pf, (key, i), f"the schema refuses {value!r} here: {_first_error(exc)}") from None
    combos = [c for c in itertools.product(*section.axes.values()) if not _excluded(pf, section, c)]
    if not combos:
        raise _refuse(pf, (), "the search space is empty: search.exclude leaves out every combination", EXCLUDE)
    if len(combos) > section.max_candidates:
        raise _refuse(pf, (), f"{len(combos)} combinations exceed search.max_candidates ({section.max_candidates})")
    candidates = []
    for combo in combos:
        values = dict(zip(section.axes, combo, strict=True))
        cdata = data
        for key, value in values.items():
            cdata = _with(cdata, key, value)
        cdata["name"] = _name(pf.config.name, values)
        try:
            Pipeline.model_validate(cdata)
        except ValidationError as exc:  # values valid alone, refused together
            shown = ", ".join(f"{k}={v!r}" for k, v in values.items())
            raise _refuse(pf, (), f"the candidate {shown} is refused by the schema: {_first_error(exc)}") from None
        text = f"# gates search candidate of {pf.path.name}: {json.dumps(values, default=str)}\n" + yaml.safe_dump(
            cdata, sort_keys=False, allow_unicode=True
        )
        cpf = dataclasses.replace(parse_pipeline(text, pf.path.with_name(f"{cdata['name']}.yaml")), root=pf.root)
        candidates.append(Candidate(cdata["name"], values, cpf, text))
    digest = hashlib.sha256(pf.text.encode()).hexdigest()
    return SearchSpace(section, tuple(candidates), digest)


def write_candidate(candidate: Candidate, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{candidate.name}.yaml"
    path.write_text(candidate.yaml)
    return path
