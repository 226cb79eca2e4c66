"""``kind: trace``: replay a trace file, time scaled by ``load.trace_speed``, every line a paired arrival.

The trace is JSONL, one request a line, in arrival order::

    {"at_s": 0.0, "input_tokens": 812, "output_tokens": 64}
    {"at_s": 0.4, "prompt": "Summarise ...", "output_tokens": 32}

``at_s`` is seconds from the trace's start (non-negative, non-decreasing); the input is either
``input_tokens`` (random words of that many tokens in the served model's tokenizer) or the
``prompt`` itself. BurstGPT's and the Azure LLM inference traces' CSV files convert to it
(gates/workloads/convert.py). A bad line is a DataError naming the file, the line and the key.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gates.workloads.base import Build, Conversation, Turn, file_error, labelled, read_jsonl

if TYPE_CHECKING:
    from gates.config.workload import WorkloadSection


@dataclasses.dataclass(frozen=True)
class TraceLine:
    line: int
    at_s: float
    output_tokens: int
    input_tokens: int | None = None
    prompt: str | None = None


def _number(path: Path, n: int, obj: dict[str, Any], key: str) -> float:
    v = obj.get(key)
    if v is None:
        raise file_error(path, n, key, "missing")
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise file_error(path, n, key, f"must be a number, not {v!r}")
    return float(v)


def _count(path: Path, n: int, obj: dict[str, Any], key: str) -> int:
    v = _number(path, n, obj, key)
    if v != int(v) or v < 1:
        raise file_error(path, n, key, f"must be a whole number ≥ 1, not {obj[key]!r}")
    return int(v)


def read_trace(path: Path, max_requests: int | None = None) -> list[TraceLine]:
    """The trace's lines, checked: times non-negative and sorted, an input and an output length each."""
    out: list[TraceLine] = []
    last = 0.0
    for n, obj in read_jsonl(path):
        if max_requests is not None and len(out) >= max_requests:
            break
        unknown = set(obj) - {"at_s", "input_tokens", "prompt", "output_tokens"}
        if unknown:
            raise file_error(path, n, sorted(unknown)[0], "unknown key (at_s, input_tokens or prompt, output_tokens)")
        at = _number(path, n, obj, "at_s")
        if at < 0:
            raise file_error(path, n, "at_s", f"must not be negative ({at:g})")
        if at < last:
            raise file_error(path, n, "at_s", f"times must not decrease ({at:g} after {last:g})")
        last = at
        prompt = obj.get("prompt")
        if ("input_tokens" in obj) == (prompt is not None):
            raise file_error(path, n, "input_tokens", "give exactly one of input_tokens and prompt")
        if prompt is not None and (not isinstance(prompt, str) or not prompt.strip()):
            raise file_error(path, n, "prompt", "must be non-empty text")
        tokens = _count(path, n, obj, "input_tokens") if prompt is None else None
        out.append(TraceLine(n, at, _count(path, n, obj, "output_tokens"), tokens, prompt))
    return out


class TraceWorkload:
    own_times = True

    def check(self, section: WorkloadSection) -> None:
        if section.file is None:
            raise ValueError("load.workload kind 'trace' needs file (a JSONL trace)")

    def validate(self, section: WorkloadSection, resolve: Callable[[str], Path]) -> None:
        assert section.file is not None
        read_trace(resolve(section.file), section.max_requests)

    def build(self, b: Build) -> list[Conversation]:
        s = b.section
        assert s.file is not None
        lines = read_trace(b.resolve(s.file), s.max_requests)
        rng = random.Random(b.seed)
        t0 = lines[0].at_s
        out = []
        for ln in lines:
            prompt = ln.prompt if ln.prompt is not None else b.text.make(ln.input_tokens or 1, rng)
            turn = Turn(prompt, ln.output_tokens, labels={"turn": "1"})
            out.append(Conversation((labelled(turn, b.text, s.buckets),), (ln.at_s - t0) / b.trace_speed))
        return out
