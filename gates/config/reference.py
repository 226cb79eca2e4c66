"""docs/config-defaults.md: every pipeline config key with its type and default, from the schema.

``python -m gates.config.reference`` rewrites the page (``--check``: exit 1 when it is stale), so
the documented defaults are the ones the code applies (the README's example shows values).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from gates.config.schema import Pipeline

PAGE = Path(__file__).resolve().parents[2] / "docs" / "config-defaults.md"
HEAD = """# Pipeline config: every key and its default

Generated from the schema (`gates/config/schema.py`) by `python -m gates.config.reference`; a
test fails when it is stale. *required*: the key has no default. What each key does:
[config.md](config.md).

| key | type | default |
|---|---|---|
"""


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The config section a field holds (``X``, ``X | None``), or None for a plain value."""
    for t in (annotation, *get_args(annotation)):
        if isinstance(t, type) and issubclass(t, BaseModel):
            return t
    return None


def _type(annotation: Any) -> str:
    if get_origin(annotation) is None and isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "").replace("gates.config.", "")


def _default(field: Any) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return "*required*"
    value = field.default_factory() if field.default_factory is not None else field.default
    if isinstance(value, BaseModel):
        return "(section defaults)"
    if isinstance(value, list) and value and isinstance(value[0], BaseModel):
        return "; ".join(str(v.model_dump(exclude_defaults=True)) for v in value)
    return "null" if value is None else repr(getattr(value, "value", value))


def keys(model: type[BaseModel] = Pipeline, prefix: str = "") -> Iterator[tuple[str, str, str]]:
    """(dotted key, type, default) of every key, sections expanded in place."""
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        section = _model_of(field.annotation)
        if section is not None and get_origin(field.annotation) not in (list, dict):
            yield key, section.__name__, _default(field)
            yield from keys(section, key + ".")
        else:
            yield key, _type(field.annotation), _default(field)


def page() -> str:
    rows = [f"| `{k}` | {t.replace('|', '&#124;')} | {d.replace('|', '&#124;')} |" for k, t, d in keys()]
    return HEAD + "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gates.config.reference", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 when docs/config-defaults.md is stale")
    args = parser.parse_args(argv)
    text = page()
    stale = not PAGE.is_file() or PAGE.read_text() != text
    if args.check:
        print(f"{PAGE}: {'stale: run python -m gates.config.reference' if stale else 'up to date'}")
        return 1 if stale else 0
    PAGE.write_text(text)
    print(f"{PAGE}: {len(text.splitlines()) - HEAD.count(chr(10))} keys")
    return 0


if __name__ == "__main__":
    sys.exit(main())
