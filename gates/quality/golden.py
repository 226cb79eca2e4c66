"""Golden prompt suites (JSONL) and calibration sets: parsing with line numbers, then expectations."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from gates.errors import DataError
from gates.quality.datafile import read_data_file
from gates.quality.expectations import Expectation, validate_rows

MAX_PROMPT_CHARS = 8000
MAX_JSONL_BYTES = 64_000_000  # data files are read whole; bigger ones are a mistake or an attack
MAX_JSONL_LINE = 1_000_000
MAX_TEMPERATURE = 10.0
MAX_REPEATS = 1000


class ChatMessage(BaseModel):
    """One turn of a chat, rendered with the model's own chat template."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: str = Field(pattern=r"^(system|user|assistant)$")
    content: str


def _one_of_prompt_or_messages(prompt: str | None, messages: tuple[ChatMessage, ...] | None, text: str) -> None:
    if (prompt is None) == (messages is None):
        raise ValueError(f"a row needs exactly one of {text!r} (plain text) or 'messages' (a chat)")
    if messages is not None and not messages:
        raise ValueError("'messages' must hold at least one {role, content} turn")


class GoldenRow(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    prompt: str | None = None
    messages: tuple[ChatMessage, ...] | None = None  # a chat instead of a prompt
    expected: str | None = None
    must_contain: list[str] = Field(default_factory=list)  # every one of these strings (all of them)
    must_contain_any: list[str] = Field(default_factory=list)  # at least one of these strings
    regex: str | None = None
    max_new_tokens: int | None = Field(default=None, ge=1, le=4096)
    tags: list[str] = Field(default_factory=list)
    weight: float = Field(default=1.0, gt=0)
    # sampled decoding: softmax(logits / temperature), `repeats` draws per arm, seeded per repeat
    temperature: float | None = Field(default=None, gt=0, le=MAX_TEMPERATURE, allow_inf_nan=False)
    repeats: int = Field(default=1, ge=1, le=MAX_REPEATS)
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)

    @field_validator("repeats")
    @classmethod
    def _repeats_need_sampling(cls, repeats: int, info: ValidationInfo) -> int:
        if repeats > 1 and info.data.get("temperature") is None:
            raise ValueError("repeats > 1 needs 'temperature' > 0 (greedy decoding repeats the same answer)")
        return repeats

    @field_validator("seed")
    @classmethod
    def _seed_needs_sampling(cls, seed: int | None, info: ValidationInfo) -> int | None:
        if seed is not None and info.data.get("temperature") is None:
            raise ValueError("'seed' needs 'temperature' > 0 (greedy decoding draws nothing)")
        return seed

    @model_validator(mode="after")
    def _prompt_or_messages(self) -> GoldenRow:
        _one_of_prompt_or_messages(self.prompt, self.messages, "prompt")
        return self

    @property
    def sampled(self) -> bool:
        return self.temperature is not None

    @property
    def has_check(self) -> bool:
        """Whether the row has a task check (``expected``, ``must_contain``, ``must_contain_any`` or ``regex``)."""
        checks = (self.must_contain, self.must_contain_any)
        return self.expected is not None or any(bool(c) for c in checks) or self.regex is not None

    def seeds(self) -> list[int]:
        """One seed per repeat, the same for both arms and every run: from ``seed`` when given,
        else from the row's id (so adding or reordering rows changes no other row's draws)."""
        key = f"seed:{self.seed}" if self.seed is not None else f"id:{self.id}"
        return [
            int.from_bytes(hashlib.sha256(f"{key}:{r}".encode()).digest()[:4], "big") & 0x7FFFFFFF
            for r in range(self.repeats)
        ]

    @property
    def display(self) -> str:
        """What a reviewer reads: the prompt, or the chat's last user turn."""
        if self.prompt is not None:
            return self.prompt
        users = [m.content for m in self.messages or () if m.role == "user"]
        return users[-1] if users else (self.messages or ())[-1].content


class CalibrationRow(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    text: str | None = None
    messages: tuple[ChatMessage, ...] | None = None

    @model_validator(mode="after")
    def _text_or_messages(self) -> CalibrationRow:
        _one_of_prompt_or_messages(self.text, self.messages, "text")
        return self


# A calibration sample: plain text, or a chat rendered later with the model's template.
Sample = str | tuple[ChatMessage, ...]


@dataclasses.dataclass(frozen=True)
class GoldenPrompt:
    suite: str
    line: int
    row: GoldenRow


GOLDEN_CHECKS = (
    Expectation("ExpectColumnValuesToNotBeNull", "id", {}, "id is missing"),
    Expectation("ExpectColumnValuesToBeUnique", "id", {}, "duplicate id"),
    Expectation("ExpectColumnValuesToMatchRegex", "prompt_text", {"regex": r"\S"}, "empty prompt"),
)


def prompt_chars_check(max_prompt_words: int) -> Expectation:
    """The characters a prompt may have: MAX_PROMPT_CHARS at the default 1,024 words, scaled with a
    larger ``golden.max_prompt_words`` (long-context suites)."""
    limit = int(MAX_PROMPT_CHARS * max(1.0, max_prompt_words / 1024))
    return Expectation(
        "ExpectColumnValueLengthsToBeBetween",
        "prompt_text",
        {"min_value": 1, "max_value": limit},
        f"prompt length outside 1..{limit} characters",
    )


CALIBRATION_CHECKS = (
    Expectation("ExpectColumnValuesToBeUnique", "id", {}, "duplicate id"),
    Expectation("ExpectColumnValuesToMatchRegex", "sample_text", {"regex": r"\S"}, "empty text"),
    Expectation(
        "ExpectColumnValueLengthsToBeBetween",
        "sample_text",
        {"min_value": 1, "max_value": 100_000},
        "text length outside 1..100000 characters",
    ),
)


def read_jsonl(path: Path) -> tuple[list[dict[str, Any]], list[int]]:
    """Rows and their 1-based line numbers; blank lines are skipped, bad JSON names its line."""
    blob = read_data_file(path, MAX_JSONL_BYTES)  # a regular file, bounded: not a FIFO or /dev/zero
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError as exc:
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
    path: Path,
    label: str,
    allowed_tags: Sequence[str] | None = None,
    max_prompt_words: int = 1024,
    validated: Path | None = None,
) -> list[GoldenPrompt]:
    """Parse, check expectations (before any model work), then type the rows of one suite.

    ``validated``: where passing expectation checks are remembered (see ``validate_rows``)."""
    rows, lines = read_jsonl(path)
    checks = [
        *GOLDEN_CHECKS,
        prompt_chars_check(max_prompt_words),
        Expectation(
            "ExpectColumnValuesToBeBetween",
            "prompt_words",
            {"min_value": 1, "max_value": max_prompt_words},
            f"prompt longer than {max_prompt_words} whitespace tokens",
        ),
    ]
    derived = []
    for r in rows:
        prompt, tags = _row_text(r, "prompt"), r.get("tags") or []
        extra: dict[str, Any] = {
            "prompt_text": prompt,
            "prompt_words": len(prompt.split()) if isinstance(prompt, str) else None,
        }
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
    validate_rows(path, derived, lines, checks, validated)
    typed = _typed(path, rows, lines, GoldenRow)
    for r, n in zip(typed, lines, strict=True):
        if r.regex is not None:
            try:
                re.compile(r.regex)
            except re.error as exc:
                raise DataError(f"{path}:{n}: at key 'regex': invalid regular expression: {exc}") from None
    return [GoldenPrompt(suite=label, line=n, row=r) for r, n in zip(typed, lines, strict=True)]


def _row_text(row: dict[str, Any], key: str) -> str | None:
    """The text the expectations check: the plain field, or the chat's turns joined."""
    value = row.get(key)
    if isinstance(value, str) or "messages" not in row:
        return value if isinstance(value, str) else None
    turns = row.get("messages")
    if not isinstance(turns, list):
        return None
    parts = [t.get("content") for t in turns if isinstance(t, dict)]
    return "\n".join(p for p in parts if isinstance(p, str)) or None


def load_calibration(path: Path, validated: Path | None = None) -> list[Sample]:
    rows, lines = read_jsonl(path)
    derived = [{**r, "sample_text": _row_text(r, "text")} for r in rows]
    validate_rows(path, derived, lines, CALIBRATION_CHECKS, validated)
    out: list[Sample] = []
    for r in _typed(path, rows, lines, CalibrationRow):
        out.append(r.text if r.text is not None else r.messages)
    return out
