"""Fuzz: any data file gives rows or a DataError (exit 2) with file and line, never an internal error."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from gates.errors import DataError, ExitCode
from gates.quality.golden import read_jsonl

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
LINE = st.one_of(
    JSON.map(json.dumps),
    st.text(max_size=60),
    st.integers(min_value=1, max_value=50_000).map(lambda n: "[" * n + "]" * n),  # deep nesting
    st.integers(min_value=1, max_value=50_000).map(lambda n: '{"a":' * n + "1" + "}" * n),
    st.just('{"id": "a", "prompt": "' + "x" * 1_100_000 + '"}'),  # an over-long line
)


def _read(blob: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "data.jsonl"
        path.write_bytes(blob)
        try:
            rows, lines = read_jsonl(path)
        except DataError as exc:
            assert exc.exit_code == ExitCode.BAD_INPUT and str(path) in str(exc)
        else:
            assert all(isinstance(r, dict) for r in rows) and len(rows) == len(lines)


@settings(max_examples=500, deadline=None)
@given(st.lists(LINE, max_size=6))
def test_any_jsonl_is_rows_or_bad_input(lines: list[str]) -> None:
    _read("\n".join(lines).encode("utf-8", "surrogatepass"))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_are_rows_or_bad_input(blob: bytes) -> None:
    _read(blob)


def test_a_file_that_never_ends_is_refused() -> None:
    try:
        read_jsonl(Path("/dev/zero"))
    except DataError as exc:
        assert "not a regular file" in str(exc)
    else:
        raise AssertionError("read /dev/zero to the end")


TASK_YAML = st.one_of(
    st.integers(min_value=1, max_value=50_000).map(lambda n: "[" * n + "]" * n),  # flow nesting
    st.integers(min_value=1, max_value=50_000).map(lambda n: "task: t\nx: " + "{a: " * n + "1" + "}" * n),
    st.integers(min_value=1, max_value=3_000).map(lambda n: "".join(" " * i + "- \n" for i in range(n))),
    st.text(max_size=200),
    st.just("task: t\noutput_type: multiple_choice\n"),
)


@settings(max_examples=60, deadline=None)
@given(TASK_YAML)
def test_any_lm_eval_task_yaml_is_a_task_or_bad_input(text: str) -> None:
    """Nested 50,000 deep was a RecursionError (an internal error): now a DataError naming the file."""
    from gates.quality.lm_eval_tasks import task_spec

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "task.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            spec = task_spec(path)
        except DataError as exc:
            assert exc.exit_code == ExitCode.BAD_INPUT and str(path) in str(exc)
        else:
            assert spec.name == "t"
