"""What a workload is: conversations of paired turns, the Protocol every kind follows, and text.

A workload is light (config validation lists the kinds): no tokenizer, no locust. The load stage
builds its conversations once, with a :class:`Text` that counts and makes tokens (the served
model's tokenizer there, whitespace words in tests), and writes them to a JSONL file the locust
worker replays (gates/loadgen/schedule.py).
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from gates.errors import DataError

if TYPE_CHECKING:
    from gates.config.workload import WorkloadSection


@dataclasses.dataclass(frozen=True)
class Turn:
    """One request, sent to both arms: the prompt (history included), its output length, labels."""

    prompt: str
    max_new_tokens: int
    think_s: float = 0.0  # wait after the previous turn's two responses before sending this one
    labels: dict[str, str] = dataclasses.field(default_factory=dict)  # class labels (turn, group, input…)


@dataclasses.dataclass(frozen=True)
class Conversation:
    """Turns sent one after the other; ``at_s``: its start from the load's start (None: the load
    mode paces it, open-loop arrivals or a closed loop's free user)."""

    turns: tuple[Turn, ...]
    at_s: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"at_s": self.at_s, "turns": [dataclasses.asdict(t) for t in self.turns]}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Conversation:
        return cls(tuple(Turn(**t) for t in d["turns"]), d["at_s"])


def write_conversations(path: Path, conversations: Iterable[Conversation]) -> None:
    with path.open("w") as f:
        for c in conversations:
            f.write(json.dumps(c.to_json()) + "\n")


def read_conversations(path: Path) -> list[Conversation]:
    return [Conversation.from_json(json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


class Text(Protocol):
    """Token counts and token-sized text in the served model's tokenizer, and its chat template."""

    def tokens(self, text: str) -> int:
        """How many tokens ``text`` is."""
        ...

    def make(self, n: int, rng: random.Random) -> str:
        """Text of ``n`` tokens (random words: no two prompts share a prefix by accident)."""
        ...

    def chat(self, messages: Sequence[dict[str, str]]) -> str:
        """The conversation so far as the model's chat template renders it, ready for the next reply."""
        ...


WORDS = (
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "that",
    "for",
    "it",
    "as",
    "was",
    "with",
    "be",
    "by",
    "on",
    "not",
    "he",
    "this",
    "are",
    "or",
    "his",
    "from",
    "at",
    "which",
    "but",
    "have",
    "an",
    "they",
    "you",
    "were",
    "her",
    "she",
    "there",
    "been",
    "one",
    "all",
    "we",
    "their",
    "has",
    "would",
    "when",
    "if",
    "so",
    "no",
    "will",
    "more",
    "up",
    "out",
    "who",
    "them",
    "some",
    "what",
    "time",
    "could",
    "into",
    "only",
    "new",
    "other",
    "then",
    "two",
    "may",
    "these",
    "about",
    "any",
    "after",
    "most",
    "over",
    "also",
    "made",
    "first",
    "river",
    "stone",
    "light",
    "market",
    "garden",
    "window",
    "signal",
    "engine",
    "paper",
    "winter",
    "music",
    "number",
    "table",
    "voice",
    "city",
    "method",
)


class WordText:
    """Tokens as whitespace words (no tokenizer): tests, and a server whose tokenizer is not local."""

    def tokens(self, text: str) -> int:
        return len(text.split())

    def make(self, n: int, rng: random.Random) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(max(n, 0)))

    def chat(self, messages: Sequence[dict[str, str]]) -> str:
        return "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant:"


@dataclasses.dataclass(frozen=True)
class Build:
    """What a workload builds from: its section, paths resolved against the pipeline file, the
    text, how many conversations (generated kinds), the seed and the trace's speed-up."""

    section: WorkloadSection
    resolve: Callable[[str], Path]
    text: Text
    count: int
    seed: int = 0
    trace_speed: float = 1.0
    max_new: tuple[int, int] = (16, 16)  # output lengths, uniform (load.max_new_tokens..max_new_tokens_max)

    def output(self, rng: random.Random) -> int:
        return rng.randint(*self.max_new)


class Workload(Protocol):
    """One workload kind (registered in gates.workloads.WORKLOADS)."""

    # its conversations carry their own start times (a trace): load.rate does not pace them
    own_times: bool

    def check(self, section: WorkloadSection) -> None:
        """The cross-field rules of ``load.workload`` for this kind; raises ValueError saying what to change."""
        ...

    def validate(self, section: WorkloadSection, resolve: Callable[[str], Path]) -> None:
        """Read and check the files the section names; raises DataError naming file, line and key."""
        ...

    def build(self, b: Build) -> list[Conversation]:
        """The conversations of this workload."""
        ...


def file_error(path: Path | str, line: int | None, key: str, what: str) -> DataError:
    """A bad workload file: exit 2, naming the file, the line (1-based) and the key."""
    where = f"{path}:{line}" if line is not None else str(path)
    return DataError(f"{where}: {key}: {what}")


def read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) of every non-blank line; a line that is not a JSON object is a DataError."""
    if not path.is_file():
        raise file_error(path, None, "file", "not found")
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise file_error(path, n, "line", f"not JSON ({e.msg})") from None
        if not isinstance(obj, dict):
            raise file_error(path, n, "line", "must be a JSON object")
        out.append((n, obj))
    if not out:
        raise file_error(path, None, "file", "has no records")
    return out


def bucket(tokens: int, edges: Sequence[int]) -> str:
    """The input-length class of a prompt of ``tokens``: "≤128", "129-512", ">2048" for edges 128, 512, 2048."""
    low = 0
    for edge in edges:
        if tokens <= edge:
            return f"≤{edge}" if low == 0 else f"{low + 1}-{edge}"
        low = edge
    return f">{low}"


def labelled(turn: Turn, text: Text, edges: Sequence[int]) -> Turn:
    """The turn with its input-length labels (token count and bucket) added."""
    n = text.tokens(turn.prompt)
    return dataclasses.replace(turn, labels={**turn.labels, "input_tokens": str(n), "input": bucket(n, edges)})
