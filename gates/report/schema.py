"""report.schema.json: the JSON Schema of report.json, generated from :mod:`gates.report.model`.

``python -m gates.report.schema`` rewrites the file (``--check``: exit 1 when it is stale) and
prints its sha256, the value ``SCHEMA_HISTORY`` records for the current ``schema_version``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from pydantic.json_schema import GenerateJsonSchema

from gates.report.model import SCHEMA_HISTORY, SCHEMA_VERSION, Report

SCHEMA_PATH = Path(__file__).with_name("report.schema.json")
DIALECT = "https://json-schema.org/draft/2020-12/schema"  # what pydantic generates


class _Generator(GenerateJsonSchema):
    """pydantic's generator without a title per field ("Max Rate" for max_rate says nothing more)."""

    def field_title_should_be_set(self, schema: object) -> bool:
        return False


def schema() -> dict[str, Any]:
    return {"$schema": DIALECT, **Report.model_json_schema(mode="validation", schema_generator=_Generator)}


def schema_text() -> str:
    return json.dumps(schema(), indent=2, ensure_ascii=False) + "\n"


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gates.report.schema", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 when report.schema.json is stale")
    args = parser.parse_args(argv)
    text = schema_text()
    stale = not SCHEMA_PATH.is_file() or SCHEMA_PATH.read_text() != text
    if args.check:
        print(f"{SCHEMA_PATH}: {'stale: run python -m gates.report.schema' if stale else 'up to date'}")
        return 1 if stale else 0
    if stale:
        SCHEMA_PATH.write_text(text)
    print(f"{SCHEMA_PATH}: schema_version {SCHEMA_VERSION}, sha256 {digest(text)}")
    if SCHEMA_HISTORY.get(SCHEMA_VERSION) != digest(text):
        print(
            f"SCHEMA_HISTORY[{SCHEMA_VERSION}] in gates/report/model.py is not this hash: if the schema changed, bump "
            "Report.schema_version, rerun, and record the new version's hash (never edit a released one)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
