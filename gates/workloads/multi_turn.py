"""``kind: multi_turn``: conversations of N turns with think time, each turn carrying the history.

Turn k's prompt is the whole conversation so far rendered by the model's chat template: the system
message, turns 1..k-1 with their replies, and turn k's user message. The replies in the history are
the conversation's own (recorded in ``file``, or generated words), never an arm's answer, so both
arms get the same prompt at every turn and the comparison stays paired. Each turn's class is its
number (``turn: "1"``, ``"2"``, ...): the per-turn TTFT shows what a long history costs.

``file`` (optional) is JSONL, one conversation a line::

    {"messages": [{"role": "system", "content": "..."}, {"role": "user", "content": "..."},
                  {"role": "assistant", "content": "..."}, {"role": "user", "content": "..."}],
     "think_s": 2.0}

Every assistant message must follow a user message (a turn without a user message is an error).
Without ``file``: ``turns`` turns of ``user_tokens`` words, replies of ``assistant_tokens``.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from gates.workloads.base import Build, Conversation, Turn, file_error, labelled, read_jsonl

if TYPE_CHECKING:
    from gates.config.workload import WorkloadSection

ROLES = ("system", "user", "assistant")


@dataclasses.dataclass(frozen=True)
class Recorded:
    line: int
    messages: tuple[dict[str, str], ...]
    think_s: float | None


def read_conversations_file(path: Path) -> list[Recorded]:
    """The file's conversations, checked: roles known, text non-empty, every turn starting with a user message."""
    out = []
    for n, obj in read_jsonl(path):
        unknown = set(obj) - {"messages", "think_s"}
        if unknown:
            raise file_error(path, n, sorted(unknown)[0], "unknown key (messages, think_s)")
        msgs = obj.get("messages")
        if not isinstance(msgs, list) or not msgs:
            raise file_error(path, n, "messages", "missing or empty (a list of {role, content})")
        prev = None
        for i, m in enumerate(msgs):
            key = f"messages[{i}]"
            if not isinstance(m, dict):
                raise file_error(path, n, key, "must be an object {role, content}")
            if m.get("role") not in ROLES:
                raise file_error(path, n, f"{key}.role", f"must be one of {', '.join(ROLES)}, not {m.get('role')!r}")
            if not isinstance(m.get("content"), str) or not m["content"].strip():
                raise file_error(path, n, f"{key}.content", "missing or empty")
            if m["role"] == "system" and i != 0:
                raise file_error(path, n, f"{key}.role", "a system message comes first only")
            if m["role"] == "assistant" and prev != "user":
                raise file_error(path, n, f"{key}.role", "a turn without a user message (assistant must follow user)")
            if m["role"] == "user" and prev == "user":
                raise file_error(path, n, f"{key}.role", "a turn without its reply (two user messages in a row)")
            prev = m["role"]
        if not any(m["role"] == "user" for m in msgs):
            raise file_error(path, n, "messages", "has no user message")
        think = obj.get("think_s")
        if think is not None and (
            isinstance(think, bool) or not isinstance(think, (int, float)) or not math.isfinite(think) or think < 0
        ):
            raise file_error(path, n, "think_s", f"must be a non-negative number, not {think!r}")
        out.append(Recorded(n, tuple({"role": m["role"], "content": m["content"]} for m in msgs), think))
    return out


def turns_of(messages: tuple[dict[str, str], ...]) -> list[tuple[list[dict[str, str]], dict[str, str] | None]]:
    """(history before the turn's user message, the recorded reply or None) for each user message."""
    out: list[tuple[list[dict[str, str]], dict[str, str] | None]] = []
    for i, m in enumerate(messages):
        if m["role"] == "user":
            reply = messages[i + 1] if i + 1 < len(messages) and messages[i + 1]["role"] == "assistant" else None
            out.append((list(messages[: i + 1]), reply))
    return out


class MultiTurnWorkload:
    own_times = False

    def check(self, section: WorkloadSection) -> None:
        return None

    def validate(self, section: WorkloadSection, resolve: Callable[[str], Path]) -> None:
        if section.file is not None:
            read_conversations_file(resolve(section.file))

    def _generated(self, b: Build, rng: random.Random) -> tuple[dict[str, str], ...]:
        s = b.section
        msgs: list[dict[str, str]] = []
        for _ in range(s.turns):
            msgs.append({"role": "user", "content": b.text.make(s.user_tokens, rng)})
            msgs.append({"role": "assistant", "content": b.text.make(s.assistant_tokens, rng)})
        return tuple(msgs)

    def build(self, b: Build) -> list[Conversation]:
        s = b.section
        rng = random.Random(b.seed)
        recorded = read_conversations_file(b.resolve(s.file)) if s.file is not None else None
        out = []
        for i in range(b.count):
            if recorded is not None:
                rec = recorded[i % len(recorded)]
                messages, think = rec.messages, rec.think_s if rec.think_s is not None else s.think_s
            else:
                messages, think = self._generated(b, rng), s.think_s
            turns = []
            for k, (history, _reply) in enumerate(turns_of(messages), 1):
                turn = Turn(b.text.chat(history), b.output(rng), think if k > 1 else 0.0, {"turn": str(k)})
                turns.append(labelled(turn, b.text, s.buckets))
            out.append(Conversation(tuple(turns)))
        return out
