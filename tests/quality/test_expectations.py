"""Passing expectation checks are remembered; failing ones never are."""

from __future__ import annotations

from pathlib import Path

import pytest

from gates.errors import DataError
from gates.quality import expectations
from gates.quality.expectations import Expectation, validate_rows

CHECK = Expectation("ExpectColumnValuesToNotBeNull", "prompt", {}, "missing prompt")


def test_a_passing_validation_is_not_run_twice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows, lines, cache = [{"prompt": "hi"}, {"prompt": "there"}], [1, 2], tmp_path / "validated"
    validate_rows(tmp_path / "s.jsonl", rows, lines, [CHECK], cache)
    assert len(list(cache.iterdir())) == 1

    def must_not_run(*args: object) -> None:
        raise AssertionError("validated again")

    monkeypatch.setattr(expectations, "_validate", must_not_run)
    validate_rows(tmp_path / "s.jsonl", rows, lines, [CHECK], cache)  # remembered
    with pytest.raises(AssertionError):  # other rows (or lines, checks, file) are validated
        validate_rows(tmp_path / "s.jsonl", [*rows, {"prompt": "more"}], [*lines, 3], [CHECK], cache)


def test_a_failing_validation_fails_every_time(tmp_path: Path) -> None:
    rows, cache = [{"prompt": "hi"}, {"prompt": None}], tmp_path / "validated"
    for _ in range(2):
        with pytest.raises(DataError, match="lines 2: missing prompt"):
            validate_rows(tmp_path / "s.jsonl", rows, [1, 2], [CHECK], cache)
    assert not cache.exists() or not list(cache.iterdir())
