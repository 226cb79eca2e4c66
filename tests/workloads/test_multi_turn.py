"""Multi-turn conversations: each turn carries the history, recorded replies, think time; bad files exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gates.config.workload import WorkloadSection
from gates.errors import DataError
from gates.workloads import WORKLOADS, WorkloadKind
from gates.workloads.base import Build, WordText
from gates.workloads.multi_turn import read_conversations_file

ROOT = Path(__file__).resolve().parents[2]


def _conv(*messages: tuple[str, str], think_s: float | None = None) -> dict[str, object]:
    d: dict[str, object] = {"messages": [{"role": r, "content": c} for r, c in messages]}
    if think_s is not None:
        d["think_s"] = think_s
    return d


def test_each_turn_carries_the_history_with_the_recorded_replies(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    conv = _conv(("system", "be brief"), ("user", "hi"), ("assistant", "hello"), ("user", "bye"), think_s=2.5)
    path.write_text(json.dumps(conv) + "\n")
    section = WorkloadSection(kind=WorkloadKind.multi_turn, file=str(path))
    (c,) = WORKLOADS["multi_turn"].build(Build(section, Path, WordText(), 1, max_new=(4, 4)))
    assert [t.prompt for t in c.turns] == [
        "system: be brief\nuser: hi\nassistant:",
        "system: be brief\nuser: hi\nassistant: hello\nuser: bye\nassistant:",
    ]
    assert [t.think_s for t in c.turns] == [0.0, 2.5]
    assert [t.labels["turn"] for t in c.turns] == ["1", "2"]
    assert c.at_s is None and all(t.max_new_tokens == 4 for t in c.turns)


def test_generated_conversations_grow_turn_by_turn() -> None:
    section = WorkloadSection(kind=WorkloadKind.multi_turn, turns=3, user_tokens=5, assistant_tokens=7, think_s=0.5)
    convs = WORKLOADS["multi_turn"].build(Build(section, Path, WordText(), 4))
    assert len(convs) == 4
    for c in convs:
        sizes = [int(t.labels["input_tokens"]) for t in c.turns]
        assert len(sizes) == 3 and sizes[0] < sizes[1] < sizes[2]
        assert c.turns[1].prompt.startswith(c.turns[0].prompt.removesuffix("assistant:"))


BAD = [
    (_conv(("assistant", "hello"), ("user", "hi")), "messages[0].role", "without a user message"),
    (_conv(("user", "a"), ("assistant", "b"), ("assistant", "c")), "messages[2].role", "without a user message"),
    (_conv(("user", "a"), ("user", "b")), "messages[1].role", "two user messages"),
    (_conv(("system", "s")), "messages", "no user message"),
    (_conv(("user", "a"), ("system", "s")), "messages[1].role", "first only"),
    (_conv(("user", "")), "messages[0].content", "missing or empty"),
    (_conv(("robot", "x")), "messages[0].role", "must be one of"),
    ({"messages": []}, "messages", "missing or empty"),
    ({"turns": []}, "turns", "unknown key"),
    (_conv(("user", "a"), think_s=-1), "think_s", "non-negative"),
]


@pytest.mark.parametrize(("conv", "key", "why"), BAD)
def test_a_bad_conversation_names_file_line_and_key(
    tmp_path: Path, conv: dict[str, object], key: str, why: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(_conv(("user", "fine"))) + "\n" + json.dumps(conv) + "\n")
    with pytest.raises(DataError) as e:
        read_conversations_file(path)
    assert str(e.value).startswith(f"{path}:2: {key}:"), str(e.value)
    assert why in str(e.value)


def test_the_shipped_sample_conversations_are_valid() -> None:
    convs = read_conversations_file(ROOT / "golden_prompts" / "sample-conversations.jsonl")
    assert len(convs) == 6 and all(sum(m["role"] == "user" for m in c.messages) >= 2 for c in convs)
