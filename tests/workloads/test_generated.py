"""Shared-prefix groups and length distributions: what they generate is what the config says."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
from pydantic import ValidationError

from gates.config.workload import LengthDist, WorkloadSection
from gates.workloads import WORKLOADS, WorkloadKind
from gates.workloads.base import Build, WordText, bucket


def test_shared_prefix_requests_share_their_group_prompt_and_differ_after_it() -> None:
    section = WorkloadSection(kind=WorkloadKind.shared_prefix, groups=3, prefix_tokens=50, suffix_tokens=6)
    convs = WORKLOADS["shared_prefix"].build(Build(section, Path, WordText(), 60))
    by_group: dict[str, list[str]] = {}
    for c in convs:
        (turn,) = c.turns
        by_group.setdefault(turn.labels["group"], []).append(turn.prompt)
        assert int(turn.labels["input_tokens"]) == 50 + 6 + 3  # words of the prefix, suffix and the roles
    assert sorted(by_group) == ["0", "1", "2"]
    prefixes = set()
    for prompts in by_group.values():
        heads = {p.split("\nuser:")[0] for p in prompts}
        assert len(heads) == 1  # one system prompt per group
        prefixes |= heads
        assert len(set(prompts)) == len(prompts)  # each request its own question
    assert len(prefixes) == 3


def _draws(d: dict[str, object], tmp_path: Path, n: int = 400) -> list[int]:
    section = WorkloadSection(
        kind=WorkloadKind.lengths, input=LengthDist(**d), output=LengthDist(dist="fixed", value=7)
    )
    convs = WORKLOADS["lengths"].build(Build(section, lambda f: tmp_path / f, WordText(), n))
    assert all(c.turns[0].max_new_tokens == 7 for c in convs)
    return [WordText().tokens(c.turns[0].prompt) for c in convs]


def test_length_distributions(tmp_path: Path) -> None:
    assert set(_draws({"dist": "fixed", "value": 12}, tmp_path)) == {12}
    u = _draws({"dist": "uniform", "low": 5, "high": 9}, tmp_path)
    assert set(u) == {5, 6, 7, 8, 9}
    g = _draws({"dist": "normal", "mean": 100, "std": 10, "max": 110}, tmp_path)
    assert max(g) == 110 and 97 < statistics.mean(g) < 101 and min(g) > 50
    (tmp_path / "t.jsonl").write_text(
        "".join(json.dumps({"at_s": i, "input_tokens": n, "output_tokens": 1}) + "\n" for i, n in enumerate([3, 300]))
    )
    e = _draws({"dist": "empirical", "trace": "t.jsonl"}, tmp_path)
    assert set(e) == {3, 300} and 0.4 < e.count(3) / len(e) < 0.6


@pytest.mark.parametrize(
    ("d", "why"),
    [
        ({"dist": "uniform", "low": 9}, "needs high"),
        ({"dist": "uniform", "low": 9, "high": 5}, "low must not exceed high"),
        ({"dist": "normal", "mean": 3}, "needs std"),
        ({"dist": "empirical"}, "needs trace"),
        ({"dist": "fixed", "value": 3, "min": 9, "max": 4}, "min must not exceed max"),
    ],
)
def test_an_incomplete_distribution_is_a_config_error(d: dict[str, object], why: str) -> None:
    with pytest.raises(ValidationError, match=why):
        LengthDist(**d)


def test_keys_of_another_kind_and_an_empty_lengths_are_errors() -> None:
    with pytest.raises(ValidationError, match="prefix_tokens do not apply to kind 'lengths'"):
        WorkloadSection(kind=WorkloadKind.lengths, prefix_tokens=3, input=LengthDist(dist="fixed", value=3))
    with pytest.raises(ValidationError, match="needs input and/or output"):
        WorkloadSection(kind=WorkloadKind.lengths)


@pytest.mark.parametrize(
    ("n", "name"), [(1, "≤128"), (128, "≤128"), (129, "129-512"), (512, "129-512"), (2048, "513-2048"), (2049, ">2048")]
)
def test_input_buckets(n: int, name: str) -> None:
    assert bucket(n, [128, 512, 2048]) == name
