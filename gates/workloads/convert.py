"""Converters from public LLM serving traces to gates' trace JSONL (gates/workloads/trace.py).

* BurstGPT (github.com/HPMLL/BurstGPT, CSV): ``Timestamp,Model,Request tokens,Response tokens,
  Total tokens,Log Type``; ``Timestamp`` is seconds from the trace's start. Rows with 0 response
  tokens are failed requests in that trace and are skipped.
* Azure LLM inference traces 2023/2024 (github.com/Azure/AzurePublicDataset, CSV):
  ``TIMESTAMP,ContextTokens,GeneratedTokens``; ``TIMESTAMP`` is a date-time
  (``2023-11-16 18:15:46.6805900``, fractions of up to 7 digits).

Times become seconds from the first row; a bad row is a DataError naming the file, line and column.
``python -m gates.workloads.convert {burstgpt,azure} IN.csv OUT.jsonl [--limit N]``.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from gates.workloads.base import file_error


def _int(path: Path, line: int, row: dict[str, str], key: str) -> int:
    raw = (row.get(key) or "").strip()
    try:
        v = int(float(raw))
    except ValueError:
        raise file_error(path, line, key, f"must be a token count, not {raw!r}") from None
    if v < 0:
        raise file_error(path, line, key, f"must not be negative ({v})")
    return v


def _rows(path: Path, need: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    if not path.is_file():
        raise file_error(path, None, "file", "not found")
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [k for k in need if k not in (reader.fieldnames or ())]
        if missing:
            raise file_error(path, 1, missing[0], f"missing column (has {', '.join(reader.fieldnames or ())})")
        for row in reader:
            yield reader.line_num, row


def burstgpt(path: Path) -> Iterator[dict[str, Any]]:
    for n, row in _rows(path, ("Timestamp", "Request tokens", "Response tokens")):
        try:
            t = float(row["Timestamp"])
        except ValueError:
            raise file_error(path, n, "Timestamp", f"must be seconds, not {row['Timestamp']!r}") from None
        out_tokens = _int(path, n, row, "Response tokens")
        if out_tokens == 0:
            continue  # a failed request in BurstGPT's log
        yield {"at_s": t, "input_tokens": max(1, _int(path, n, row, "Request tokens")), "output_tokens": out_tokens}


def _azure_time(path: Path, n: int, raw: str) -> float:
    text = raw.strip()
    head, _, frac = text.partition(".")
    try:
        when = dt.datetime.strptime(head, "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.UTC)
        return when.timestamp() + (float("0." + frac) if frac else 0.0)
    except ValueError:
        raise file_error(path, n, "TIMESTAMP", f"must be 'YYYY-MM-DD HH:MM:SS[.fff]', not {raw!r}") from None


def azure(path: Path) -> Iterator[dict[str, Any]]:
    for n, row in _rows(path, ("TIMESTAMP", "ContextTokens", "GeneratedTokens")):
        yield {
            "at_s": _azure_time(path, n, row["TIMESTAMP"]),
            "input_tokens": max(1, _int(path, n, row, "ContextTokens")),
            "output_tokens": max(1, _int(path, n, row, "GeneratedTokens")),
        }


FORMATS: dict[str, Callable[[Path], Iterator[dict[str, Any]]]] = {"burstgpt": burstgpt, "azure": azure}


def convert(fmt: str, src: Path, dst: Path, limit: int | None = None) -> int:
    """Write ``src`` (a ``fmt`` CSV) as trace JSONL to ``dst``, times from the first row, sorted; rows written."""
    rows = []
    for r in FORMATS[fmt](src):
        rows.append(r)
        if limit is not None and len(rows) >= limit:
            break
    if not rows:
        raise file_error(src, None, "file", "has no requests")
    rows.sort(key=lambda r: r["at_s"])  # stable: rows with one timestamp keep their order
    t0 = rows[0]["at_s"]
    with dst.open("w") as f:
        for r in rows:
            f.write(json.dumps({**r, "at_s": round(r["at_s"] - t0, 6)}) + "\n")
    return len(rows)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m gates.workloads.convert", description=__doc__.split("\n\n")[0])
    p.add_argument("format", choices=sorted(FORMATS))
    p.add_argument("src", type=Path)
    p.add_argument("dst", type=Path)
    p.add_argument("--limit", type=int, default=None, help="the first N requests only")
    a = p.parse_args(argv)
    print(f"wrote {convert(a.format, a.src, a.dst, a.limit)} requests to {a.dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
