"""BurstGPT and Azure LLM inference CSVs convert to the trace JSONL gates replays."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gates.errors import DataError
from gates.workloads.convert import convert, main
from gates.workloads.trace import read_trace

BURSTGPT = """Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type
5,ChatGPT,472,18,490,Conversation log
45,ChatGPT,1087,0,1087,Conversation log
46,GPT-4,417,238,655,API log
61.5,ChatGPT,4,7,11,Conversation log
"""

AZURE = """TIMESTAMP,ContextTokens,GeneratedTokens
2023-11-16 18:15:46.6805900,374,44
2023-11-16 18:15:50.9951690,396,109
2023-11-16 18:15:51,879,0
"""


def _rows(path: Path) -> list[dict[str, float]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_burstgpt_times_from_the_first_row_and_failed_requests_skipped(tmp_path: Path) -> None:
    src = tmp_path / "b.csv"
    src.write_text(BURSTGPT)
    assert convert("burstgpt", src, tmp_path / "b.jsonl") == 3
    assert _rows(tmp_path / "b.jsonl") == [
        {"at_s": 0.0, "input_tokens": 472, "output_tokens": 18},
        {"at_s": 41.0, "input_tokens": 417, "output_tokens": 238},
        {"at_s": 56.5, "input_tokens": 4, "output_tokens": 7},
    ]
    assert len(read_trace(tmp_path / "b.jsonl")) == 3  # what it writes, gates replays


def test_azure_date_times_to_seconds(tmp_path: Path) -> None:
    src = tmp_path / "a.csv"
    src.write_text(AZURE)
    assert main(["azure", str(src), str(tmp_path / "a.jsonl")]) == 0
    rows = _rows(tmp_path / "a.jsonl")
    assert [r["at_s"] for r in rows] == pytest.approx([0.0, 4.314579, 4.31941])
    assert [(r["input_tokens"], r["output_tokens"]) for r in rows] == [(374, 44), (396, 109), (879, 1)]


@pytest.mark.parametrize(
    ("fmt", "text", "where"),
    [
        ("burstgpt", "Timestamp,Request tokens\n1,2\n", ":1: Response tokens: missing column"),
        ("burstgpt", BURSTGPT.replace("46,GPT-4,417", "46,GPT-4,many"), ":4: Request tokens: must be a token count"),
        ("burstgpt", BURSTGPT.replace("61.5,", "later,"), ":5: Timestamp: must be seconds"),
        ("azure", AZURE.replace("2023-11-16 18:15:51", "yesterday"), ":4: TIMESTAMP: must be"),
        ("azure", AZURE.replace(",374,", ",-3,"), ":2: ContextTokens: must not be negative"),
    ],
)
def test_a_bad_row_names_file_line_and_column(tmp_path: Path, fmt: str, text: str, where: str) -> None:
    src = tmp_path / "in.csv"
    src.write_text(text)
    with pytest.raises(DataError) as e:
        convert(fmt, src, tmp_path / "out.jsonl")
    assert str(e.value).startswith(f"{src}{where}"), str(e.value)
