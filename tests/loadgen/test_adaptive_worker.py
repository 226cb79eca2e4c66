"""The load worker stops early once the latency decision is settled (real tritonserver, tiny model)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from gates.judge.adaptive import Plan
from gates.loadgen.run import run_worker
from gates.loadgen.spec import LoadSpec
from gates.triton.repository import write_model
from gates.triton.server import TritonServer

pytestmark = pytest.mark.integration


def test_a_a_load_settles_pass_long_before_max_duration(
    tmp_path: Path, tiny_model: Path, no_leaked_servers: None
) -> None:
    repo = tmp_path / "models"
    write_model(repo, "baseline", tiny_model)
    write_model(repo, "candidate", tiny_model)  # the same model twice: an A/A run
    plan = Plan(allowed_effect=0.5, confidence=0.99, pass_error=0.2, tail_limits=(), min_samples=30)
    with TritonServer(repo, tmp_path) as server:
        for name in ("baseline", "candidate"):
            server.load_model(name)
        spec = LoadSpec(
            url=server.url,
            arms={"baseline": "baseline", "candidate": "candidate"},
            prompts=("Shall I compare thee",),
            prompt_weights=(1.0,),
            users=2,
            spawn_rate=2.0,
            duration_s=2.0,
            max_new_tokens=2,
            max_new_tokens_max=2,
            timeout_s=10.0,
            warmup_s=0.5,
            max_duration_s=120.0,
            adaptive={"plan": dataclasses.asdict(plan), "first_look_s": 2.0, "look_interval_s": 1.0},
        )
        run_worker(spec, tmp_path / "load", server.check_alive)
    stopped = json.loads((tmp_path / "load" / "summary.json").read_text())["stopped"]
    assert stopped["reason"] == "settled" and stopped["decision"] == "pass", stopped
    assert stopped["duration_s"] < 60 and stopped["looks"], stopped
    last = stopped["looks"][-1]
    assert min(last["n_baseline"], last["n_candidate"]) >= 30 and 0 < last["fraction"] < 1
