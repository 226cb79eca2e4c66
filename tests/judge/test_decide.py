"""One verdict: every gate decided once, each shown once with one status."""

from __future__ import annotations

from gates.config.schema import GatesSection
from gates.judge.decide import DRIFT_GATES, shown_quality, verdict_of
from gates.judge.quality import drift_entry
from gates.judge.verdict import Decision, Status
from tests.judge.test_policy import _ev

# the demo's case: top-1 0.99 on every prompt passes the 0.95 point gate, while 3 prompts leave
# its bootstrap interval undecided
TOP1 = [0.99, 0.99, 0.99]


def _entries(cfg: GatesSection) -> list:  # type: ignore[type-arg]
    return [drift_entry("top1_agreement", TOP1, [16.0, 16.0, 16.0], cfg.top1_agreement_min, cfg, minimum=True)]


def test_each_gate_once_with_one_status_point_estimates() -> None:
    cfg = GatesSection(top1_agreement_min=0.95)
    entries = _entries(cfg)
    v = verdict_of(_ev(top1_agreement=0.99), entries, None, cfg)
    names = [g.name for g in v.gates]
    assert len(names) == len(set(names))
    # not the deciding gate: the quality table does not show a second top1_agreement status
    assert shown_quality(entries, cfg) == ()
    assert next(g for g in v.gates if g.name == "top1_agreement").status == Status.PASS


def test_each_gate_once_with_one_status_intervals() -> None:
    cfg = GatesSection(top1_agreement_min=0.95, drift_intervals=True)
    entries = _entries(cfg)
    v = verdict_of(_ev(top1_agreement=0.99), entries, None, cfg)
    names = [g.name for g in v.gates]
    assert len(names) == len(set(names))
    [shown] = shown_quality(entries, cfg)
    gate = next(g for g in v.gates if g.name == "top1_agreement")
    assert gate.status == shown.status and gate.interval is not None  # the interval gate decided


def test_statuses_are_one_enum_and_compare_as_their_strings() -> None:
    assert (
        Status.PASS == "pass"
        and Decision.FAIL == "FAIL"
        and {s.value for s in Status}
        == {
            "pass",
            "fail",
            "inconclusive",
            "no_data",
            "not_applied",
        }
    )
    assert set(DRIFT_GATES) == {"exact_match_rate", "top1_agreement", "mean_kl"}
