"""Trace files: replayed in order, scaled by trace_speed; a bad line is exit 2 naming file, line, key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gates.config.workload import WorkloadSection
from gates.errors import DataError, ExitCode
from gates.workloads import WORKLOADS, WorkloadKind
from gates.workloads.base import Build, WordText
from gates.workloads.trace import read_trace

ROOT = Path(__file__).resolve().parents[2]


def _write(path: Path, rows: list[object]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def _build(path: Path, speed: float = 1.0) -> list[tuple[float | None, int, int]]:
    section = WorkloadSection(kind=WorkloadKind.trace, file=str(path), buckets=[8, 64])
    convs = WORKLOADS["trace"].build(Build(section, Path, WordText(), 0, trace_speed=speed))
    return [(c.at_s, WordText().tokens(c.turns[0].prompt), c.turns[0].max_new_tokens) for c in convs]


def test_a_trace_replays_its_times_lengths_and_speed(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "t.jsonl",
        [
            {"at_s": 10.0, "input_tokens": 5, "output_tokens": 3},
            {"at_s": 10.5, "input_tokens": 70, "output_tokens": 8},
            {"at_s": 12.0, "prompt": "one two three", "output_tokens": 2},
        ],
    )
    assert _build(path) == [(0.0, 5, 3), (0.5, 70, 8), (2.0, 3, 2)]
    assert [at for at, _, _ in _build(path, speed=2.0)] == [0.0, 0.25, 1.0]
    section = WorkloadSection(kind=WorkloadKind.trace, file=str(path), buckets=[8, 64])
    labels = [c.turns[0].labels for c in WORKLOADS["trace"].build(Build(section, Path, WordText(), 0))]
    assert [lb["input"] for lb in labels] == ["≤8", ">64", "≤8"]
    assert [lb["input_tokens"] for lb in labels] == ["5", "70", "3"]


BAD = [
    ({"at_s": -1, "input_tokens": 3, "output_tokens": 2}, "at_s", "negative"),
    ({"input_tokens": 3, "output_tokens": 2}, "at_s", "missing"),
    ({"at_s": 1, "output_tokens": 2}, "input_tokens", "exactly one"),
    ({"at_s": 1, "input_tokens": 3, "prompt": "x", "output_tokens": 2}, "input_tokens", "exactly one"),
    ({"at_s": 1, "input_tokens": 3}, "output_tokens", "missing"),
    ({"at_s": 1, "input_tokens": 0, "output_tokens": 2}, "input_tokens", "≥ 1"),
    ({"at_s": 1, "input_tokens": 2.5, "output_tokens": 2}, "input_tokens", "whole number"),
    ({"at_s": "soon", "input_tokens": 3, "output_tokens": 2}, "at_s", "number"),
    ({"at_s": 1, "prompt": " ", "output_tokens": 2}, "prompt", "non-empty"),
    ({"at_s": 1, "input_tokens": 3, "output_tokens": 2, "model": "x"}, "model", "unknown key"),
    ("[1, 2]", "line", "JSON object"),
    ("{not json", "line", "not JSON"),
]


@pytest.mark.parametrize(("row", "key", "why"), BAD)
def test_a_bad_trace_line_names_file_line_and_key(tmp_path: Path, row: object, key: str, why: str) -> None:
    path = _write(tmp_path / "bad.jsonl", [{"at_s": 0, "input_tokens": 1, "output_tokens": 1}, "", row])
    with pytest.raises(DataError) as e:
        read_trace(path)
    assert e.value.exit_code == ExitCode.BAD_INPUT
    assert str(e.value).startswith(f"{path}:3: {key}:"), str(e.value)
    assert why in str(e.value)


def test_missing_and_empty_trace_files_are_bad_input(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        read_trace(tmp_path / "absent.jsonl")
    with pytest.raises(DataError, match="no records"):
        read_trace(_write(tmp_path / "empty.jsonl", [""]))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), min_size=2, max_size=20))
def test_any_decrease_in_time_is_caught_at_its_line(
    tmp_path_factory: pytest.TempPathFactory, times: list[float]
) -> None:
    path = _write(
        tmp_path_factory.mktemp("h") / "t.jsonl",
        [{"at_s": t, "input_tokens": 1, "output_tokens": 1} for t in times],
    )
    first_drop = next((i for i in range(1, len(times)) if times[i] < times[i - 1]), None)
    if first_drop is None:
        assert len(read_trace(path)) == len(times)
    else:
        with pytest.raises(DataError) as e:
            read_trace(path)
        assert str(e.value).startswith(f"{path}:{first_drop + 1}: at_s: times must not decrease")


def test_the_shipped_sample_trace_is_valid_and_as_stated() -> None:
    from gates.workloads.sample import sample_trace

    lines = read_trace(ROOT / "golden_prompts" / "sample-trace.jsonl")
    assert [(ln.at_s, ln.input_tokens, ln.output_tokens) for ln in lines] == [
        (r["at_s"], r["input_tokens"], r["output_tokens"]) for r in sample_trace()
    ]
    assert "sample-trace.jsonl" in (ROOT / "golden_prompts" / "SAMPLES.md").read_text()


def test_a_trace_workload_needs_its_file() -> None:
    with pytest.raises(ValueError, match="needs file"):
        WorkloadSection(kind=WorkloadKind.trace)
