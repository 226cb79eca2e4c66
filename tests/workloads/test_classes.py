"""Class conditions (gates.metrics[].where) and the per-class figures of a load's records."""

from __future__ import annotations

import math

import pytest

from gates.loadgen.classes import class_figures, scoped_series
from gates.workloads.classes import decode, describe, encode, holds, parse


@pytest.mark.parametrize(
    ("value", "cond", "ok"),
    [
        ("2", ">1", True),
        ("1", ">1", False),
        ("1", ">=1", True),
        ("3", "<3", False),
        ("3", "<=3", True),
        ("3", "3", True),
        ("≤128", "≤128", True),
        ("≤128", "==129-512", False),
        ("0", "!=0", False),
        ("x", ">1", False),  # a label that is not a number meets no ordering
        (None, "1", False),  # neither does a missing one
    ],
)
def test_conditions(value: str | None, cond: str, ok: bool) -> None:
    assert holds(value, cond) is ok


def test_an_ordering_of_text_is_rejected_and_labels_round_trip() -> None:
    with pytest.raises(ValueError, match="compares numbers"):
        parse(">short")
    assert decode(encode({"turn": "2", "input": "≤128"})) == {"turn": "2", "input": "≤128"}
    assert describe({"turn": ">1", "group": "0"}) == "group==0,turn>1"


def _rec(arm: str, t: float, labels: str, ttft: float, ok: bool = True) -> dict[str, object]:
    return {
        "arm": arm,
        "t_start_s": t,
        "latency_ms": ttft * 2,
        "ttft_ms": ttft,
        "itl_ms": math.nan,
        "ok": ok,
        "output_tokens": 4,
        "labels": labels,
    }


def test_per_class_figures_and_a_scoped_series() -> None:
    records = [
        _rec("baseline", 0.5, "turn=1", 999.0),  # warm-up: dropped
        _rec("baseline", 1.0, "turn=1;input=≤128", 10.0),
        _rec("candidate", 1.0, "turn=1;input=≤128", 12.0),
        _rec("baseline", 2.0, "turn=2;input=129-512", 30.0),
        _rec("candidate", 2.0, "turn=2;input=129-512", 33.0, ok=False),
        _rec("baseline", 3.0, "turn=3;input=129-512", 40.0),
        _rec("candidate", 3.0, "turn=3;input=129-512", 44.0),
    ]
    figs = class_figures(records, 1.0, 10.0)
    assert [(f.key, f.value) for f in figs] == [
        ("input", "≤128"),
        ("input", "129-512"),
        ("turn", "1"),
        ("turn", "2"),
        ("turn", "3"),
    ]
    turn2 = figs[3].arms
    assert turn2["baseline"].ttft_ms["p50"] == 30.0 and turn2["candidate"].errors == 1
    assert math.isnan(turn2["candidate"].ttft_ms["p50"])
    assert scoped_series(records, 1.0, 10.0, "ttft_ms", {"turn": ">1"}) == ((30.0, 40.0), (44.0,))
    assert scoped_series(records, 1.0, 10.0, "output_tokens_per_s", {"input": "≤128"}) == ((200.0,), (4 / 0.024,))
