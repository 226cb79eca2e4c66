"""A server-wide stall (SIGSTOP of tritonserver mid-load) is infrastructure, never the candidate's fault."""

from __future__ import annotations

from typing import Any

from gates.judge.stall import find_stall


def _load(stall: tuple[float, float] | None, failing_arm: str = "candidate", spread_errors: int = 0) -> list[Any]:
    """4 users sending interleaved requests of ~50 ms for 60 s; during ``stall`` nothing completes
    and the requests in flight time out after 30 s (in the SIGSTOP run they were all candidate's)."""
    rows: list[dict[str, Any]] = []
    t, i = 2.0, 0
    while t < 60:
        arm = "baseline" if i % 2 == 0 else "candidate"
        if stall and stall[0] <= t < stall[1]:
            for u in range(4):  # the requests in flight when the server froze
                rows.append(dict(arm=failing_arm, t_start_s=t + u * 0.01, latency_ms=30_000.0, ok=False))
            t, i = stall[1], i + 1
            continue
        ok = not (spread_errors and arm == "candidate" and i % (400 // spread_errors) == 1)
        rows.append(dict(arm=arm, t_start_s=t, latency_ms=50.0, ok=ok))
        t, i = t + 0.0125, i + 1
    return rows


def test_sigstop_of_the_server_is_found() -> None:
    stall = find_stall(_load((20.0, 50.0)))
    assert stall is not None and stall.errors == 4 and stall.by_arm == {"candidate": 4}
    assert 19.9 < stall.start_s < 20.1 and stall.end_s >= 50.0
    assert "server-wide stall" in stall.describe() and "not the candidate" in stall.describe()


def test_candidate_errors_while_the_baseline_is_served_are_no_stall() -> None:
    assert find_stall(_load(None, spread_errors=40)) is None
    assert find_stall(_load(None)) is None  # and no errors at all: nothing to explain


def _short_freeze(baseline_stuck: bool) -> list[dict[str, Any]]:
    """4 users, interleaved ~50 ms requests; from t=20 s to t=23 s (under MIN_GAP_S and 5 x p95)
    nothing completes. Two candidate requests in flight time out at t=22.5 s; the other two users'
    requests were baseline (stuck too, completing when the server resumes) or, for a candidate
    that is itself slow, candidate requests as well."""
    rows: list[dict[str, Any]] = []
    t, i = 2.0, 0
    while t < 60:
        if 20.0 <= t < 23.0:
            for u in range(2):
                rows.append(dict(arm="candidate", t_start_s=20.0 + u * 0.01, latency_ms=2_500.0, ok=False))
            for u in range(2):
                arm = "baseline" if baseline_stuck else "candidate"
                rows.append(dict(arm=arm, t_start_s=20.02 + u * 0.01, latency_ms=3_050.0, ok=True))
            t, i = 23.1, i + 1
            continue
        rows.append(dict(arm="baseline" if i % 2 == 0 else "candidate", t_start_s=t, latency_ms=50.0, ok=True))
        t, i = t + 0.0125, i + 1
    return rows


def test_a_short_freeze_both_arms_saw_is_infrastructure() -> None:
    """The previous campaign's F2, narrowed: a 3 s freeze (under 5 x p95 and MIN_GAP_S) in which
    only candidate requests timed out gave FAIL; the baseline's requests stuck across it show it
    was the server."""
    stall = find_stall(_short_freeze(baseline_stuck=True))
    assert stall is not None and stall.by_arm == {"candidate": 2}
    assert 19.9 < stall.start_s < 20.1 and stall.end_s >= 23.0
    assert "baseline" in stall.describe() and "not the candidate" in stall.describe()


def test_a_short_silence_only_the_candidate_saw_is_the_candidates() -> None:
    assert find_stall(_short_freeze(baseline_stuck=False)) is None
