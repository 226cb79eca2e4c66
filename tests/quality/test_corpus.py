"""The drift corpus files: documents, windows, and the bad inputs refused naming file and key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gates.errors import ConfigError, DataError, ExitCode
from gates.quality.corpus import check_context, cut_windows, load_corpus, served_context

KEY = "pipelines/p.yaml:12: golden.drift_corpus[0]"


class WordTokenizer:
    """One token per whitespace-separated word (ids: the word's length), enough to cut windows."""

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict[str, Any]:
        return {"input_ids": [len(w) for w in text.split()]}


def test_documents_are_separated_by_dash_lines(tmp_path: Path) -> None:
    f = tmp_path / "c.txt"
    f.write_text("one two\nthree\n---\n\n---\nfour five six\n\n  ---  \nseven\n")
    docs = load_corpus(f, "c.txt", KEY)
    assert [(d.line, d.text) for d in docs] == [(1, "one two\nthree"), (6, "four five six"), (9, "seven")]
    assert {d.source for d in docs} == {"c.txt"}


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"", "an empty corpus"),
        (b"\n---\n  \n---\n", "an empty corpus"),
        (b"\x7fELF\x02\x01\x01\x00\x00\x00binary", "a binary file"),
        (b"caf\xe9 latin-1", "not UTF-8 text"),
    ],
)
def test_bad_corpus_files_exit_2_naming_file_and_key(tmp_path: Path, content: bytes, needle: str) -> None:
    f = tmp_path / "bad.txt"
    f.write_bytes(content)
    with pytest.raises(DataError) as err:
        load_corpus(f, "bad.txt", KEY)
    assert err.value.exit_code == ExitCode.BAD_INPUT
    assert str(f) in str(err.value) and KEY in str(err.value) and needle in str(err.value)


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not a regular file"):
        load_corpus(tmp_path, "dir", KEY)


def test_windows_cut_each_document_and_drop_short_tails(tmp_path: Path) -> None:
    f = tmp_path / "c.txt"
    words = " ".join(["w"] * 70)
    f.write_text(f"{words}\n---\n{' '.join(['ab'] * 10)}\n")
    docs = load_corpus(f, "c.txt", KEY)
    windows = cut_windows(WordTokenizer(), docs, 32)
    # document 0: 70 tokens -> 32 + 32 + 6 (dropped: < 16); document 1: 10 tokens (dropped)
    assert [(w.document, w.start, len(w.ids)) for w in windows] == [(0, 0, 32), (0, 32, 32)]
    assert windows[0].scored == 31
    assert len(cut_windows(WordTokenizer(), docs, 32, max_windows=1)) == 1


def test_context_longer_than_the_engine_serves_is_a_config_error(tmp_path: Path) -> None:
    where = "pipelines/p.yaml:14"
    check_context(512, {"baseline": 8192, "candidate": None}, where, "pipelines/p.yaml")
    with pytest.raises(ConfigError) as err:
        check_context(16384, {"baseline": 8192, "candidate": 8192}, where, "pipelines/p.yaml")
    assert err.value.exit_code == ExitCode.BAD_INPUT
    assert str(err.value).startswith(f"{where}: golden.drift_context 16384 is longer than the baseline engine")


def test_served_context_reads_the_engine_or_model_config(tmp_path: Path) -> None:
    (tmp_path / "ort").mkdir()
    (tmp_path / "ort" / "genai_config.json").write_text(json.dumps({"model": {"context_length": 8192}}))
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text(json.dumps({"max_position_embeddings": 2048}))
    (tmp_path / "none").mkdir()
    assert served_context(tmp_path / "ort") == 8192
    assert served_context(tmp_path / "hf") == 2048
    assert served_context(tmp_path / "none") is None


def test_joined_documents_give_windows_longer_than_a_document_each_its_own_cluster(tmp_path: Path) -> None:
    f = tmp_path / "c.txt"
    f.write_text(f"{' '.join(['w'] * 70)}\n---\n{' '.join(['ab'] * 10)}\n---\n{' '.join(['abc'] * 30)}\n")
    docs = load_corpus(f, "c.txt", KEY)
    windows = cut_windows(WordTokenizer(), docs, 32, join=True)
    # one stream of 70 + 10 + 30 tokens: 32 + 32 + 32 + 14 (dropped: < 16)
    assert [(w.document, w.line, w.start, len(w.ids)) for w in windows] == [
        (0, 1, 0, 32),
        (1, 1, 32, 32),
        (2, 1, 64, 32),
    ]
    assert windows[2].ids == (1,) * 6 + (2,) * 10 + (3,) * 16  # crosses two document boundaries
    assert len(cut_windows(WordTokenizer(), docs, 32, max_windows=2, join=True)) == 2
    # a window starting in a later document names it, with its offset there
    late = cut_windows(WordTokenizer(), docs, 75, join=True)
    assert [(w.line, w.start) for w in late] == [(1, 0), (3, 5)]
