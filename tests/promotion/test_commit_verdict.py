"""A commit's verdict is the conjunction of its runs, per architecture (issue 27 item 1)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gates.errors import BadInputError
from gates.ledger import LedgerRun
from gates.promotion.commit_verdict import commit_verdict, configured_architectures, run_arch

D = "d" * 64


def run(i: int, verdict: str, arch: str | None, at: float | None = None, digest: str | None = D) -> LedgerRun:
    return LedgerRun(i, "p", 1, "a" * 40, digest, verdict, f"r{i}.md", None, at if at is not None else float(i), arch)


def test_fail_then_pass_on_another_architecture_is_refused_in_either_order() -> None:
    for runs in ([run(1, "FAIL", "h100"), run(2, "PASS", "l40s")], [run(1, "PASS", "l40s"), run(2, "FAIL", "h100")]):
        verdict = commit_verdict(runs)
        assert not verdict.passed and "h100" in verdict.why


def test_a_fail_is_not_undone_by_a_rerun_but_an_inconclusive_is() -> None:
    assert not commit_verdict([run(1, "FAIL", "h100"), run(2, "PASS", "h100")]).passed
    ok = commit_verdict([run(1, "INCONCLUSIVE", "h100"), run(2, "PASS", "h100")])
    assert ok.passed and ok.digest == D and ok.report == "r2.md"
    assert not commit_verdict([run(1, "PASS", "h100"), run(2, "INCONCLUSIVE", "h100")]).passed


def test_configured_architectures_must_all_pass_on_one_digest() -> None:
    assert "no gate run on a100" in commit_verdict([run(1, "PASS", "h100")], ["h100", "a100"]).why
    assert commit_verdict([run(1, "PASS", "h100"), run(2, "PASS", "a100")], ["h100", "a100"]).passed
    split = [run(1, "PASS", "h100"), run(2, "PASS", "a100", digest="e" * 64)]
    assert "different candidate digests" in commit_verdict(split).why
    assert not commit_verdict([run(1, "PASS", "h100", digest=None)]).passed
    assert not commit_verdict([]).passed


def test_order_is_by_recorded_time_not_insertion() -> None:
    """A journaled run replayed late keeps its time: it is not the latest (issue 27 item 2)."""
    runs = [run(2, "INCONCLUSIVE", "h100", at=5.0), run(1, "PASS", "h100", at=9.0)]
    assert commit_verdict(runs).passed


@given(st.lists(st.tuples(st.sampled_from(["PASS", "FAIL", "INCONCLUSIVE"]), st.sampled_from(["h100", "l40s"]))))
def test_never_passes_with_a_fail_or_without_a_pass(runs: list[tuple[str, str]]) -> None:
    verdict = commit_verdict([run(i, v, a) for i, (v, a) in enumerate(runs)])
    verdicts = [v for v, _ in runs]
    if "FAIL" in verdicts or "PASS" not in verdicts:
        assert not verdict.passed


def test_architectures_from_the_environment() -> None:
    assert configured_architectures({"GATES_GPU_ARCHS": '["h100", "l40s"]'}) == ("h100", "l40s")
    assert configured_architectures({"GATES_GPU_ARCHS": "h100, a100"}) == ("h100", "a100")
    assert configured_architectures({}) == ()
    with pytest.raises(BadInputError, match="GATES_GPU_ARCHS"):
        configured_architectures({"GATES_GPU_ARCHS": '["h100", 3]'})
    assert run_arch({"GATES_GPU_ARCH": "h100"}) == "h100"
