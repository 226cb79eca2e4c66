"""Kubernetes CRD schemas (fetched once into tests/data/schemas, descriptions removed) as JSON Schema validators."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

SCHEMAS = Path(__file__).resolve().parent.parent / "data" / "schemas"


def strict(schema: Any) -> Any:
    """The CRD's structural schema with unknown fields rejected, as ``kubectl apply`` (strict field
    validation, its default) rejects them; ``x-kubernetes-preserve-unknown-fields`` keeps them open."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict(v) for k, v in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def crd_validator(name: str) -> Callable[[dict[str, Any]], list[str]]:
    doc = json.loads((SCHEMAS / name).read_text())
    schema = strict(copy.deepcopy(doc["schema"]))
    schema["properties"]["metadata"] = {"type": "object"}  # metadata is checked by the API server, not the CRD
    validator = jsonschema.Draft7Validator(schema)

    def errors(obj: dict[str, Any]) -> list[str]:
        return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(obj)]

    return errors


@pytest.fixture(scope="session")
def crd() -> Callable[[str], Callable[[dict[str, Any]], list[str]]]:
    return crd_validator
