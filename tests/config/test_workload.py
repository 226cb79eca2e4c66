"""load.workload and gates.metrics[].where in a pipeline file: checked, with file, key path and line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gates.config import load_pipeline
from gates.errors import ConfigError

BASE = """
name: ok
model:
  source: builtin:tiny-llama
golden:
  suites: [golden_prompts/demo.jsonl]
load:
"""


def test_a_trace_paces_the_open_loop_and_a_gate_is_scoped_to_later_turns(
    write_pipeline: Callable[..., Path],
) -> None:
    text = BASE + (
        "  mode: open\n  trace_speed: 2\n  workload: {kind: trace, file: golden_prompts/sample-trace.jsonl}\n"
        "gates:\n  metrics:\n    - {name: ttft_ms, direction: increase, where: {turn: '>1'}}\n"
    )
    cfg = load_pipeline(write_pipeline(text)).config
    assert cfg.load.workload is not None and cfg.load.workload.kind == "trace" and cfg.load.trace_speed == 2.0
    assert cfg.gates.metrics[0].series_key == "ttft_ms[turn>1]"
    mixed = BASE + (
        "  mode: open\n  rate: 0.5\n  workload:\n    - {kind: trace, file: golden_prompts/sample-trace.jsonl}\n"
        "    - {kind: shared_prefix, groups: 2}\n"
    )
    kinds = [w.kind for w in load_pipeline(write_pipeline(mixed)).config.load.workloads]
    assert kinds == ["trace", "shared_prefix"]


@pytest.mark.parametrize(
    ("load", "line", "message"),
    [
        (
            "  mode: open\n  workload: {kind: trace, file: t.jsonl}\n  sweep: {over: rate, values: [1]}\n"
            "  slo: {ttft_ms: 100}\n",
            6,
            "drop load.sweep",
        ),
        (
            "  mode: open\n  workload:\n    - {kind: trace, file: t.jsonl}\n    - {kind: multi_turn}\n",
            6,
            "start at load.rate: set it",
        ),
        ("  workload: [{kind: multi_turn}, {kind: multi_turn, turns: 2}]\n", 6, "lists a kind twice"),
        ("  workload: {kind: lengths}\n", 7, "needs input and/or output"),
        ("  workload: {kind: shared_prefix, turns: 3}\n", 7, "turns do not apply"),
        ("  workload: {kind: chat}\n", 7, "kind"),
        ("  profile: peak_context\n  workload: {kind: multi_turn}\n", 6, "replaces load.profile"),
        ("  workload: {kind: multi_turn, buckets: [512, 128]}\n", 7, "strictly increasing"),
    ],
)
def test_workload_mistakes_name_the_line(
    write_pipeline: Callable[..., Path], load: str, line: int, message: str
) -> None:
    path = write_pipeline(BASE + load)
    with pytest.raises(ConfigError) as info:
        load_pipeline(path)
    text = str(info.value)
    assert f"{path}:{line}:" in text and message in text, text


def test_a_where_condition_must_parse(write_pipeline: Callable[..., Path]) -> None:
    path = write_pipeline(
        BASE + "  users: 2\ngates:\n  metrics:\n    - {name: ttft_ms, direction: increase, where: {turn: '>first'}}\n"
    )
    with pytest.raises(ConfigError, match="compares numbers"):
        load_pipeline(path)
