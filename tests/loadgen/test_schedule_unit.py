"""The workload scheduler's pacing without a server (a sender that answers at once): a trace at
its own times and the other conversations at the mode's arrivals, both at once; closed-loop users."""

from __future__ import annotations

import time
from typing import Any

import gevent

from gates.loadgen.schedule import ScheduleLoop
from gates.loadgen.spec import LoadSpec
from gates.workloads.base import Conversation, Turn

SPEC = LoadSpec(
    url="127.0.0.1:9",
    arms={"baseline": "b", "candidate": "c"},
    prompts=("x",),
    prompt_weights=(1.0,),
    users=2,
    spawn_rate=2.0,
    duration_s=1.0,
    max_new_tokens=1,
    max_new_tokens_max=1,
    timeout_s=1.0,
)


def _send(client: Any, arm: str, model: str, prompt: str, max_new: int, t0: float, user: int) -> dict[str, Any]:
    return {"arm": arm, "t_start_s": round(time.monotonic() - t0, 3), "prompt": prompt, "user": user}


def _run(loop: ScheduleLoop, seconds: float) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    loop.sink = out.append
    g = gevent.spawn(loop.run, time.monotonic())
    gevent.sleep(seconds)
    g.kill()
    loop.drain(0.5)
    return out


def test_a_trace_keeps_its_times_while_the_rest_arrive_at_the_rate() -> None:
    trace = [Conversation((Turn("t", 1, labels={"workload": "trace"}),), at) for at in (0.0, 0.3)]
    chat = Conversation((Turn("a1", 1), Turn("a2", 1, 0.1)))
    times = iter([0.05, 0.25, 0.45])
    loop = ScheduleLoop(SPEC, [*trace, chat], lambda r: None, None, times, sender=_send)
    out = _run(loop, 0.8)
    trace_starts = sorted(r["t_start_s"] for r in out if r["prompt"] == "t" and r["arm"] == "baseline")
    assert len(trace_starts) == 2 and trace_starts[1] >= 0.3 - 0.005  # never before its time
    # three arrivals of the two-turn conversation (reused, new pair ids): turn 2 after 0.1 s think time
    pairs = {r["pair"] for r in out if r["prompt"].startswith("a")}
    assert len(pairs) == 6 and all(len([r for r in out if r["pair"] == p]) == 2 for p in pairs)


def test_closed_users_take_conversations_in_turn() -> None:
    convs = [Conversation((Turn(f"c{i}", 1),)) for i in range(3)]
    loop = ScheduleLoop(SPEC, convs, lambda r: None, 2, None, sender=lambda *a: gevent.sleep(0.05) or _send(*a))
    out = _run(loop, 0.5)
    prompts = [r["prompt"] for r in out if r["arm"] == "baseline"]
    assert set(prompts) == {"c0", "c1", "c2"}  # the users went through the conversations in turn
    assert len({r["pair"] for r in out}) == len(out) // 2
