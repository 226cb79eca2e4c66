"""Golden prompt suites (JSONL) and calibration sets: parsing with line numbers, then expectations."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gates.errors import DataError
from gates.quality.expectations import Expectation, validate_rows

MAX_PROMPT_CHARS = 8000
MAX_JSONL_BYTES = 64_000_000  # data files are read whole; bigger ones are a mistake or an attack
MAX_JSONL_LINE = 1_000_000


class GoldenRow(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    prompt: str
    expected: str | None = None
    must_contain: list[str] = Field(default_factory=list)
    regex: str | None = None
    max_new_tokens: int | None = Field(default=None, ge=1, le=4096)
    tags: list[str] = Field(default_factory=list)
    weight: float = Field(default=1.0, gt=0)


class CalibrationRow(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    text: str


@dataclasses.dataclass(frozen=True)
class GoldenPrompt:
    suite: str
    line: int
    row: GoldenRow


GOLDEN_CHECKS = (
    Expectation("ExpectColumnValuesToNotBeNull", "id", {}, "id is missing"),
    Expectation("ExpectColumnValuesToBeUnique", "id", {}, "duplicate id"),
    Expectation("ExpectColumnValuesToMatchRegex", "prompt", {"regex": r"\S"}, "empty prompt"),
    Expectation(
        "ExpectColumnValueLengthsToBeBetween",
        "prompt",
        {"min_value": 1, "max_value": MAX_PROMPT_CHARS},
        f"prompt length outside 1..{MAX_PROMPT_CHARS} characters",
    ),
)
CALIBRATION_CHECKS = (
    Expectation("ExpectColumnValuesToBeUnique", "id", {}, "duplicate id"),
    Expectation("ExpectColumnValuesToMatchRegex", "text", {"regex": r"\S"}, "empty text"),
    Expectation(
        "ExpectColumnValueLengthsToBeBetween",
        "text",
        {"min_value": 1, "max_value": 100_000},
        "text length outside 1..100000 characters",
    ),
)


def read_jsonl(path: Path) -> tuple[list[dict[str, Any]], list[int]]:
    """Rows and their 1-based line numbers; blank lines are skipped, bad JSON names its line."""
    try:  # bounded: a file that never ends (a FIFO, /dev/zero) must not grow until the OOM killer
        with path.open("rb") as f:
            blob = f.read(MAX_JSONL_BYTES + 1)
        if len(blob) > MAX_JSONL_BYTES:
            raise DataError(f"{path}: larger than {MAX_JSONL_BYTES // 1_000_000} MB")
        text = blob.decode("utf-8")
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # ValueError: a NUL in the path
        raise DataError(f"{path}: cannot read: {exc}") from None
    rows, lines = [], []
    for n, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        if len(raw) > MAX_JSONL_LINE:
            raise DataError(f"{path}:{n}: line longer than {MAX_JSONL_LINE} characters")
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{n}: invalid JSON: {exc.msg} (column {exc.colno})") from None
        except RecursionError:  # nested arrays/objects deeper than the parser's stack
            raise DataError(f"{path}:{n}: invalid JSON: nested too deeply") from None
        if not isinstance(obj, dict):
            raise DataError(f"{path}:{n}: each line must be a JSON object, got {type(obj).__name__}")
        rows.append(obj)
        lines.append(n)
    if not rows:
        raise DataError(f"{path}: no rows")
    return rows, lines


def _typed(path: Path, rows: list[dict[str, Any]], lines: list[int], model: type[BaseModel]) -> list[Any]:
    out = []
    for row, n in zip(rows, lines, strict=True):
        try:
            out.append(model.model_validate(row))
        except ValidationError as exc:
            err = exc.errors()[0]
            key = ".".join(str(p) for p in err["loc"]) or "(row)"
            msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            raise DataError(f"{path}:{n}: at key {key!r}: {msg}") from None
    return out


def load_golden_suite(
    path: Path, label: str, allowed_tags: Sequence[str] | None = None, max_prompt_words: int = 1024
) -> list[GoldenPrompt]:
    """Parse, check expectations (before any model work), then type the rows of one suite."""
    rows, lines = read_jsonl(path)
    checks = [
        *GOLDEN_CHECKS,
        Expectation(
            "ExpectColumnValuesToBeBetween",
            "prompt_words",
            {"min_value": 1, "max_value": max_prompt_words},
            f"prompt longer than {max_prompt_words} whitespace tokens",
        ),
    ]
    derived = []
    for r in rows:
        prompt, tags = r.get("prompt"), r.get("tags") or []
        extra: dict[str, Any] = {"prompt_words": len(prompt.split()) if isinstance(prompt, str) else None}
        if allowed_tags is not None and isinstance(tags, list):
            extra["unknown_tags"] = ",".join(sorted({str(t) for t in tags} - set(allowed_tags))) or None
        derived.append({**r, **extra})
    if allowed_tags is not None:
        checks.append(
            Expectation(
                "ExpectColumnValuesToBeNull",
                "unknown_tags",
                {},
                f"tag not in golden.allowed_tags {sorted(allowed_tags)}",
            )
        )
    validate_rows(path, derived, lines, checks)
    typed = _typed(path, rows, lines, GoldenRow)
    for r, n in zip(typed, lines, strict=True):
        if r.regex is not None:
            try:
                re.compile(r.regex)
            except re.error as exc:
                raise DataError(f"{path}:{n}: at key 'regex': invalid regular expression: {exc}") from None
    return [GoldenPrompt(suite=label, line=n, row=r) for r, n in zip(typed, lines, strict=True)]


def load_calibration(path: Path) -> list[str]:
    rows, lines = read_jsonl(path)
    validate_rows(path, rows, lines, CALIBRATION_CHECKS)
    return [r.text for r in _typed(path, rows, lines, CalibrationRow)]
