"""Workloads on the real tritonserver: every turn to both arms, turns in order with think time, a
trace at its own (scaled) times, class labels on every record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gates.loadgen.run import run_worker
from gates.loadgen.spec import LoadSpec
from gates.loadgen.stats import read_records
from gates.triton.repository import write_model
from gates.triton.server import TritonServer
from gates.workloads.base import Conversation, Turn, write_conversations
from gates.workloads.classes import decode


def _spec(server: TritonServer, path: Path, **kw: object) -> LoadSpec:
    base: dict[str, object] = dict(
        url=server.url,
        arms={"baseline": "b", "candidate": "c"},
        prompts=("unused",),
        prompt_weights=(1.0,),
        users=1,
        spawn_rate=1.0,
        duration_s=4.0,
        max_new_tokens=2,
        max_new_tokens_max=2,
        timeout_s=10.0,
        workload=str(path),
    )
    return LoadSpec(**{**base, **kw})  # type: ignore[arg-type]


@pytest.mark.integration
def test_workloads_on_the_real_server(tmp_path: Path, tiny_model: Path, no_leaked_servers: None) -> None:
    repo = tmp_path / "models"
    write_model(repo, "b", tiny_model)
    write_model(repo, "c", tiny_model)
    conversations = [
        Conversation(
            tuple(
                Turn(f"hello {i} " * k, 2, 0.3 if k > 1 else 0.0, {"turn": str(k), "group": str(i % 2)})
                for k in (1, 2, 3)
            )
        )
        for i in range(4)
    ]
    trace = [Conversation((Turn("four score", 2, labels={"turn": "1"}),), at_s) for at_s in (0.0, 1.0, 1.2, 2.4)]
    write_conversations(tmp_path / "multi.jsonl", conversations)
    write_conversations(tmp_path / "trace.jsonl", trace)
    with TritonServer(repo, tmp_path / "triton") as server:
        for name in ("b", "c"):
            server.load_model(name)
        multi = read_records(
            run_worker(_spec(server, tmp_path / "multi.jsonl", users=2), tmp_path / "m", server.check_alive)
        )
        # a trace: each conversation at its own at_s (the load stage has scaled them by trace_speed)
        spec = _spec(server, tmp_path / "trace.jsonl", mode="open", duration_s=30.0)
        traced = read_records(run_worker(spec, tmp_path / "t", server.check_alive))
    assert multi and all(r["ok"] for r in multi)
    by_pair: dict[str, dict[str, dict[str, object]]] = {}
    for r in multi:
        by_pair.setdefault(r["pair"], {})[r["arm"]] = r
    assert all(set(p) == {"baseline", "candidate"} for p in by_pair.values())  # every turn to both arms
    # within a conversation, turn k+1 starts after turn k's two responses plus the think time
    convs: dict[str, dict[int, float]] = {}
    for pair, arms in by_pair.items():
        conv, turn = pair.split(":")
        ends = [float(a["t_start_s"]) + float(a["latency_ms"]) / 1000 for a in arms.values()]  # type: ignore[arg-type]
        starts = [float(a["t_start_s"]) for a in arms.values()]  # type: ignore[arg-type]
        convs.setdefault(conv, {})[int(turn)] = min(starts)
        convs[conv][-int(turn)] = max(ends)
    for turns in convs.values():
        for k in (2, 3):
            if k in turns:
                assert turns[k] >= turns[-(k - 1)] + 0.3 - 0.01
    assert {decode(r["labels"])["turn"] for r in multi} >= {"1", "2", "3"}
    summary = json.loads((tmp_path / "t" / "summary.json").read_text())
    assert summary["stopped"]["reason"] == "workload_end"  # the trace ended the load, not duration_s
    starts = sorted({float(r["t_start_s"]) for r in traced if r["arm"] == "baseline"})
    assert len(starts) == 4 and starts == pytest.approx([0.0, 1.0, 1.2, 2.4], abs=0.15)
