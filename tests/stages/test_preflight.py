"""Preflight's sample-size warning: a suite too small for its margin is named before any model work."""

from __future__ import annotations

from gates.judge.paired import detectable_effect, items_for_effect
from gates.stages.preflight import ASSUMED_ACCURACY, suite_size_warnings


def test_small_suite_is_named_with_the_items_it_needs() -> None:
    need = items_for_effect(0.05, ASSUMED_ACCURACY, 0.99, 0.8)
    (w,) = suite_size_warnings({"task checks": 28, "mc.jsonl": need}, 0.05, 0.99, 0.8)
    assert w.startswith("task checks: 28 items detect accuracy drops of ")
    assert f"{detectable_effect(28, ASSUMED_ACCURACY, 0.99, 0.8):.3f}" in w and f"about {need} items" in w


def test_no_margin_no_warning() -> None:
    assert suite_size_warnings({"task checks": 3}, None, 0.99, 0.8) == []


def test_sampled_suite_states_the_range_its_draws_allow() -> None:
    (plain,) = suite_size_warnings({"task checks": 8}, 0.2, 0.95, 0.8)
    (w,) = suite_size_warnings({"task checks": 8}, 0.2, 0.95, 0.8, {"task checks": 5})
    assert w.startswith(plain) and "sampled rows, 5 draws each" in w
    var = ASSUMED_ACCURACY * (1 - ASSUMED_ACCURACY) / 5
    assert f"{detectable_effect(8, ASSUMED_ACCURACY, 0.95, 0.8, var):.3f} and " in w
    assert f"{items_for_effect(0.2, ASSUMED_ACCURACY, 0.95, 0.8, var)} items if every item" in w
    assert suite_size_warnings({"task checks": 8}, 0.2, 0.95, 0.8, {"task checks": 1}) == [plain]
