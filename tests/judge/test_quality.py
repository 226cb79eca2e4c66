"""Quality entries: the pass / fail / inconclusive rule on intervals, and no data never passing."""

from __future__ import annotations

import math

import pytest

from gates.config.schema import GatesSection
from gates.judge.quality import ACCURACY, accuracy_entry, drift_entry, perplexity_entry, sampled_accuracy_entry


def cfg(**kw: float | bool | None) -> GatesSection:
    return GatesSection(**kw)  # type: ignore[arg-type]


def test_identical_arms_on_many_items_pass_the_margin() -> None:
    b = [True] * 600 + [False] * 200
    (e,) = accuracy_entry("task_accuracy", ACCURACY, b, b, cfg(accuracy_drop_max=0.02))
    assert e.status == "pass" and e.difference.estimate == 0 and e.difference.high < 0.02
    assert e.p_value == 1.0
    # power 0.80 aimed at as 0.85 (power_aimed), two arms at the baseline's accuracy
    normal = (2.3263479 + 1.0364334) * math.sqrt(2 * 0.75 * 0.25 / 800)
    assert e.detectable_effect is not None and normal < e.detectable_effect < 1.1 * normal


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
    same = perplexity_entry(base * 2, base * 2, tokens * 2, cfg(perplexity_increase_max=0.05))
    assert same.status == "pass" and same.difference.estimate == 0
    few = perplexity_entry(base, base, tokens, cfg(perplexity_increase_max=0.05))  # 6 documents
    assert few.status == "inconclusive" and "fewer than 10 documents" in few.reason
    assert perplexity_entry([], [], [], cfg(perplexity_increase_max=0.05)).status == "no_data"


def test_drift_interval_rule() -> None:
    ok = drift_entry("top1_agreement", [1.0] * 40, [10.0] * 40, 0.95, cfg(), minimum=True)
    assert ok.status == "pass"
    mixed = drift_entry("top1_agreement", [1.0, 0.8] * 20, [10.0] * 40, 0.95, cfg(), minimum=True)
    assert mixed.status == "fail"  # 0.9 ± small: wholly below 0.95
    unsure = drift_entry("top1_agreement", [1.0, 0.9, 1.0, 0.85, 1.0], [1.0] * 5, 0.95, cfg(), minimum=True)
    assert unsure.status == "inconclusive"
    kl = drift_entry("mean_kl", [0.01, 0.02, math.nan] * 10, [1.0] * 30, 0.05, cfg(), minimum=False)
    assert kl.status == "pass" and kl.n == 20
    few = drift_entry("mean_kl", [0.010, 0.011, 0.012, 0.010, 0.011], [1.0] * 5, 0.05, cfg(), minimum=False)
    assert few.status == "inconclusive" and "fewer than 20 prompts" in few.reason
    assert drift_entry("mean_kl", [], [], 0.05, cfg(), minimum=False).status == "no_data"


def _draws(rates: list[float], repeats: int) -> list[list[bool]]:
    """Items whose draws pass at the given rates (the first k of ``repeats`` pass)."""
    return [[r < round(rate * repeats) for r in range(repeats)] for rate in rates]


def test_sampled_items_are_judged_on_pass_rates_and_say_so() -> None:
    base = _draws([1.0, 0.8, 0.6, 0.4] * 50, 5)
    cand = _draws([0.8, 0.6, 0.4, 0.2] * 50, 5)  # every item loses one draw in five: drop 0.2
    entries = sampled_accuracy_entry("task_accuracy", ACCURACY, base, cand, cfg(accuracy_drop_max=0.05), [0.7] * 200)
    (e,) = entries
    assert e.status == "fail" and e.difference.estimate == pytest.approx(0.2) and e.difference.low > 0.05
    assert e.baseline is not None and e.baseline.estimate == pytest.approx(0.7)
    assert "sign-flip" in e.reason and "1000 draws per arm" in e.reason and "McNemar" not in e.reason
    assert e.p_value is not None and e.p_value < 1e-3
    js = e.to_json()
    assert js["temperature"] == [0.7] and js["repeats"] == [5] and js["kind"] == "accuracy"
    assert {"name", "kind", "baseline", "candidate", "difference", "p_value", "detectable_effect", "status"} <= set(js)
    # the detectable effect uses the variance of a pass rate, not of a 0/1 outcome
    assert e.detectable_effect is not None and e.detectable_effect < (2.3263479 + 0.8416212) * math.sqrt(
        2 * 0.7 * 0.3 / 200
    )


def test_identical_sampled_arms_pass_and_one_draw_per_item_is_the_zero_one_gate() -> None:
    base = _draws([1.0, 0.8, 0.6, 0.4, 0.0] * 100, 5)
    (e,) = sampled_accuracy_entry("task_accuracy", ACCURACY, base, base, cfg(accuracy_drop_max=0.05), [0.7] * 500)
    assert e.status == "pass" and e.p_value == 1.0 and e.difference.high < 0.05
    b = [True] * 20 + [False] * 8
    c = [True] * 19 + [False] * 9
    once = sampled_accuracy_entry(
        "task_accuracy", ACCURACY, [[x] for x in b], [[x] for x in c], cfg(accuracy_drop_max=0.02), [0.7] * 28
    )
    (flat,) = accuracy_entry("task_accuracy", ACCURACY, b, c, cfg(accuracy_drop_max=0.02))
    assert once == [flat.__class__(**{**flat.__dict__, "temperature": (0.7,), "repeats": (1,)})]
    assert "McNemar" in once[0].reason
    # greedy rows (temperature 0) mixed in count as one 0/1 outcome and add no temperature
    (mixed,) = sampled_accuracy_entry(
        "t", ACCURACY, [[True], [True, False]], [[True], [False, False]], cfg(accuracy_drop_max=0.05), [0.0, 0.9]
    )
    assert mixed.temperature == (0.9,) and mixed.repeats == (2,) and mixed.n == 2
    assert "temperature" not in accuracy_entry("t", ACCURACY, b, c, cfg())[0].to_json()
