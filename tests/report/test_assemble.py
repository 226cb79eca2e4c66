"""report.json's drift.worst: task checks that regressed are always shown, with both answers."""

from __future__ import annotations

from gates.quality.drift import PromptDrift
from gates.report.assemble import REGRESSED_SHOWN, shown_prompts


def row(i: int, kl: float, exact: bool = False, b: bool | None = None, c: bool | None = None) -> PromptDrift:
    return PromptDrift(f"p{i}", "s.jsonl", i, (), 1.0, "q", "a", "b", exact, 0, None, 16, 1.0, kl, kl, b, c)


def test_a_regressed_task_is_shown_first_even_when_its_kl_is_small() -> None:
    rows = [row(i, kl=1.0 + i) for i in range(10)] + [row(99, kl=1e-4, exact=True, b=True, c=False)]
    shown = shown_prompts(rows, 5)
    assert [r.id for r in shown] == ["p99", "p9", "p8", "p7", "p6"]
    assert [r.id for r in shown_prompts(rows[:10], 3)] == ["p9", "p8", "p7"]  # nothing regressed: the worst


def test_improvements_are_not_regressions_and_the_list_is_bounded() -> None:
    rows = [row(1, 0.1, b=False, c=True), row(2, 0.2, b=None, c=False)]
    assert [r.id for r in shown_prompts(rows, 1)] == ["p2"]
    many = [row(i, 0.1, b=True, c=False) for i in range(REGRESSED_SHOWN + 7)]
    assert len(shown_prompts(many, 5)) == REGRESSED_SHOWN
