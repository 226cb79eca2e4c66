"""Quality entries: the pass / fail / inconclusive rule on intervals, and no data never passing."""

from __future__ import annotations

import math

import pytest

from gates.config.schema import GatesSection
from gates.judge.quality import ACCURACY, accuracy_entry, drift_entry, perplexity_entry


def cfg(**kw: float | bool | None) -> GatesSection:
    return GatesSection(**kw)  # type: ignore[arg-type]


def test_identical_arms_on_many_items_pass_the_margin() -> None:
    b = [True] * 600 + [False] * 200
    (e,) = accuracy_entry("task_accuracy", ACCURACY, b, b, cfg(accuracy_drop_max=0.02))
    assert e.status == "pass" and e.difference.estimate == 0 and e.difference.high < 0.02
    assert e.p_value == 1.0
    assert e.detectable_effect == pytest.approx((2.3263479 + 0.8416212) * math.sqrt(2 * 0.75 * 0.25 / 800), abs=1e-6)


def test_a_clear_drop_fails() -> None:
    b = [True] * 300
    c = [True] * 200 + [False] * 100
    (e,) = accuracy_entry("task_accuracy", ACCURACY, b, c, cfg(accuracy_drop_max=0.05))
    assert e.status == "fail" and e.difference.low > 0.05
    assert e.p_value < 1e-20


def test_a_small_suite_is_inconclusive_and_says_how_many_items() -> None:
    b = [True] * 20 + [False] * 8
    c = [True] * 19 + [False] * 9
    (e,) = accuracy_entry("task_accuracy", ACCURACY, b, c, cfg(accuracy_drop_max=0.02))
    assert e.status == "inconclusive"
    assert "more items would settle it" in e.reason and "items would detect 0.02" in e.reason
    assert e.detectable_effect is not None and e.detectable_effect > 0.02


def test_no_items_is_no_data_and_no_margin_is_not_applied() -> None:
    (e,) = accuracy_entry("task_accuracy", ACCURACY, [], [], cfg(accuracy_drop_max=0.02))
    assert e.status == "no_data" and e.gate().status == "no_data"
    (e,) = accuracy_entry("task_accuracy", ACCURACY, [True, False], [True, False], cfg())
    assert e.status == "not_applied"


def test_recovery_gate() -> None:
    b = [True] * 400
    c = [True] * 380 + [False] * 20
    entries = accuracy_entry("mc", ACCURACY, b, c, cfg(accuracy_drop_max=0.2, recovery_min=0.9))
    assert [x.name for x in entries] == ["mc", "mc recovery"]
    rec = entries[1]
    assert rec.difference.estimate == pytest.approx(0.95) and rec.status == "pass"
    entries = accuracy_entry("mc", ACCURACY, b, c, cfg(accuracy_drop_max=0.2, recovery_min=0.99))
    assert entries[1].status == "fail"


def test_perplexity_relative_increase() -> None:
    tokens = [50, 80, 60, 70, 90, 40]
    base = [2.0 * t for t in tokens]
    worse = [n + 0.1 * t for n, t in zip(base, tokens, strict=True)]  # +0.1 nat per token everywhere
    e = perplexity_entry(base, worse, tokens, cfg(perplexity_increase_max=0.05))
    assert e.difference.estimate == pytest.approx(math.expm1(0.1))
    assert e.baseline is not None and e.baseline.estimate == pytest.approx(math.exp(2.0))
    assert e.status == "fail"
    same = perplexity_entry(base, base, tokens, cfg(perplexity_increase_max=0.05))
    assert same.status == "pass" and same.difference.estimate == 0
    assert perplexity_entry([], [], [], cfg(perplexity_increase_max=0.05)).status == "no_data"


def test_drift_interval_rule() -> None:
    ok = drift_entry("top1_agreement", [1.0] * 40, [10.0] * 40, 0.95, cfg(), minimum=True)
    assert ok.status == "pass"
    mixed = drift_entry("top1_agreement", [1.0, 0.8] * 20, [10.0] * 40, 0.95, cfg(), minimum=True)
    assert mixed.status == "fail"  # 0.9 ± small: wholly below 0.95
    unsure = drift_entry("top1_agreement", [1.0, 0.9, 1.0, 0.85, 1.0], [1.0] * 5, 0.95, cfg(), minimum=True)
    assert unsure.status == "inconclusive"
    kl = drift_entry("mean_kl", [0.01, 0.02, math.nan], [1.0, 1.0, 1.0], 0.05, cfg(), minimum=False)
    assert kl.status == "pass" and kl.n == 2
    assert drift_entry("mean_kl", [], [], 0.05, cfg(), minimum=False).status == "no_data"
