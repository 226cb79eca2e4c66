from __future__ import annotations

import json
from pathlib import Path

import pytest

from gates.errors import DataError, ExitCode
from gates.quality.golden import load_calibration, load_golden_suite

REPO = Path(__file__).resolve().parents[2]


def _write(path: Path, rows: list[object]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_repo_suites_pass_their_expectations() -> None:
    prompts = load_golden_suite(REPO / "golden_prompts" / "demo.jsonl", "demo")
    assert len(prompts) >= 10
    assert len(load_calibration(REPO / "golden_prompts" / "calibration.jsonl")) >= 32


def test_duplicate_id_names_rows_and_expectation(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "g.jsonl", [{"id": "a", "prompt": "x"}, {"id": "b", "prompt": "y"}, {"id": "a", "prompt": "z"}]
    )
    with pytest.raises(DataError) as info:
        load_golden_suite(path, "g")
    msg = str(info.value)
    assert info.value.exit_code == ExitCode.BAD_INPUT
    assert f"{path}: lines 1, 3: duplicate id (expectation ExpectColumnValuesToBeUnique on 'id')" in msg


def test_empty_prompt_names_row(tmp_path: Path) -> None:
    path = _write(tmp_path / "g.jsonl", [{"id": "a", "prompt": "x"}, "", {"id": "b", "prompt": "   "}])
    with pytest.raises(DataError) as info:
        load_golden_suite(path, "g")
    assert f"{path}: lines 3: empty prompt" in str(info.value)


def test_bad_json_names_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "g.jsonl", [{"id": "a", "prompt": "x"}, "{not json"])
    with pytest.raises(DataError, match=r"g\.jsonl:2: invalid JSON"):
        load_golden_suite(path, "g")


def test_unknown_key_names_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "g.jsonl", [{"id": "a", "prompt": "x", "promt": "typo"}])
    with pytest.raises(DataError, match=r"g\.jsonl:1: at key 'promt': unknown key"):
        load_golden_suite(path, "g")


def test_calibration_expectations(tmp_path: Path) -> None:
    path = _write(tmp_path / "c.jsonl", [{"id": "1", "text": "hello"}, {"id": "2", "text": ""}])
    with pytest.raises(DataError, match="lines 2: empty text"):
        load_calibration(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot read"):
        load_golden_suite(tmp_path / "nope.jsonl", "x")


def test_tags_outside_allowed_list_name_rows(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "g.jsonl",
        [{"id": "a", "prompt": "x", "tags": ["math"]}, {"id": "b", "prompt": "y", "tags": ["math", "poetry"]}],
    )
    load_golden_suite(path, "g")  # no allowed list: any tag
    with pytest.raises(DataError, match=r"lines 2: tag not in golden.allowed_tags \['math'\]"):
        load_golden_suite(path, "g", allowed_tags=["math"])


def test_prompt_word_bound(tmp_path: Path) -> None:
    path = _write(tmp_path / "g.jsonl", [{"id": "a", "prompt": "one two three"}, {"id": "b", "prompt": "one"}])
    with pytest.raises(DataError, match="lines 1: prompt longer than 2 whitespace tokens"):
        load_golden_suite(path, "g", max_prompt_words=2)


def test_invalid_regex_names_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "g.jsonl", [{"id": "a", "prompt": "x", "regex": "(unclosed"}])
    with pytest.raises(DataError, match=r"g\.jsonl:1: at key 'regex': invalid regular expression"):
        load_golden_suite(path, "g")
