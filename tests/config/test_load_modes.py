"""load.mode / rate / arrivals / sweep: strict, with the file, key path and line of the mistake."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from gates.config import load_pipeline
from gates.config.load_modes import SweepSection
from gates.errors import ConfigError

BASE = """
name: ok
model:
  source: builtin:tiny-llama
golden:
  suites: [golden_prompts/demo.jsonl]
load:
"""


def _load(write_pipeline: Callable[..., Path], load: str) -> object:
    return load_pipeline(write_pipeline(BASE + load)).config.load  # type: ignore[attr-defined]


def test_default_is_todays_closed_loop(write_pipeline: Callable[..., Path]) -> None:
    cfg = load_pipeline(write_pipeline(BASE.replace("load:\n", ""))).config.load
    assert (cfg.mode, cfg.rate, cfg.sweep) == ("closed", None, None)


def test_open_loop_and_rate_sweep(write_pipeline: Callable[..., Path]) -> None:
    cfg = load_pipeline(
        write_pipeline(
            BASE + "  mode: open\n  rate: 2\n  arrivals: constant\n  slo: {latency_ms: 900}\n"
            "  sweep: {over: rate, values: [0.5, 1, 2], duration_s: 6}\n"
        )
    ).config.load
    assert cfg.mode == "open" and cfg.rate == 2.0 and cfg.arrivals == "constant"
    assert cfg.sweep is not None and cfg.sweep.values == [0.5, 1.0, 2.0] and cfg.sweep.duration_s == 6.0


# a wrong value points at its own line; a wrong combination at the `load:` line (6)
@pytest.mark.parametrize(
    ("load", "line", "message"),
    [
        ("  mode: open\n", 6, "load.mode 'open' needs load.rate"),
        ("  rate: 3\n", 6, "applies to load.mode 'open' only"),
        ("  mode: opne\n", 7, "load.mode"),
        ("  mode: open\n  rate: 1\n  arrivals: bursty\n", 9, "load.arrivals"),
        ("  slo: {latency_ms: 1}\n  sweep: {over: rate, values: [1]}\n", 6, "needs load.mode: open"),
        ("  mode: open\n  rate: 1\n  sweep: {over: rate, values: [1, 2]}\n", 6, "set at least one limit in load.slo"),
        ("  slo: {latency_ms: 1}\n  sweep: {over: concurrency, values: [1, 1.5]}\n", 6, "whole numbers"),
        ("  slo: {latency_ms: 1}\n  sweep: {over: concurrency, values: [2, 1]}\n", 8, "strictly increasing"),
        ("  slo: {latency_ms: 1}\n  sweep: {over: users, values: [1]}\n", 8, "load.sweep.over"),
        ("  slo: {latency_ms: 1}\n  sweep: {over: concurrency, values: [1], step: 3}\n", 8, "load.sweep.step"),
    ],
)
def test_bad_modes_name_file_key_and_line(
    write_pipeline: Callable[..., Path], load: str, line: int, message: str
) -> None:
    path = write_pipeline(BASE + load)
    with pytest.raises(ConfigError) as info:
        load_pipeline(path)
    text = str(info.value)
    assert f"{path}:{line}:" in text and message in text, text


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=-5, max_value=20_000, allow_nan=False), min_size=0, max_size=8))
def test_sweep_values_accepted_iff_positive_strictly_increasing(values: list[float]) -> None:
    ok = bool(values) and all(0 < v <= 10_000 for v in values) and all(a < b for a, b in itertools.pairwise(values))
    try:
        SweepSection(over="rate", values=values)
    except ValidationError:
        assert not ok
    else:
        assert ok
