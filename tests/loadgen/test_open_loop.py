"""Open loop on the real tritonserver: the offered rate is achieved, arrivals do not wait for responses,
and each arm can take its own share of the same arrivals."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gates.loadgen.run import run_worker
from gates.loadgen.spec import LoadSpec
from gates.loadgen.stats import read_records
from gates.loadgen.summary import ArrivalStats, GeneratorSummary, Stopped
from gates.stages.load import generator_problem
from gates.triton.repository import write_model
from gates.triton.server import TritonServer


@pytest.mark.integration
def test_open_loop_achieves_the_offered_rate_and_each_arm_its_share(
    tmp_path: Path, tiny_model: Path, no_leaked_servers: None
) -> None:
    repo = tmp_path / "models"
    write_model(repo, "b", tiny_model)
    write_model(repo, "c", tiny_model)
    rate, duration = 6.0, 5.0
    with TritonServer(repo, tmp_path / "triton") as server:
        for name in ("b", "c"):
            server.load_model(name)
        spec = LoadSpec(
            url=server.url,
            arms={"baseline": "b", "candidate": "c"},
            prompts=("Four score and seven years",),
            prompt_weights=(1.0,),
            users=1,
            spawn_rate=1.0,
            duration_s=duration,
            max_new_tokens=2,
            max_new_tokens_max=2,
            timeout_s=10.0,
            mode="open",
            rate=rate,
            arrivals="constant",
        )
        records = read_records(run_worker(spec, tmp_path / "load", server.check_alive))
        # the capacity search's per-arm rates: arrivals at the faster arm's rate, the slower arm a share
        shared = dataclasses.replace(
            spec,
            prompts=("Four score and seven years", "Call me Ishmael", "It was a bright cold day"),
            prompt_weights=(1.0, 1.0, 1.0),
            rate=8.0,
            arrivals="poisson",
            arm_share={"baseline": 0.4, "candidate": 1.0},
        )
        thinned = read_records(run_worker(shared, tmp_path / "shared", server.check_alive))
    _each_arm_takes_its_share_of_the_same_arrivals(thinned)
    summary = json.loads((tmp_path / "load" / "summary.json").read_text())
    # each request is recorded once: locust counted what the CSV holds, and no arrival repeats in an arm
    assert summary["locust_requests"] == summary["records"] == len(records)
    for arm in ("baseline", "candidate"):
        arrivals = [r["user"] for r in records if r["arm"] == arm]
        assert len(arrivals) == len(set(arrivals))
        starts = np.sort([r["t_start_s"] for r in records if r["arm"] == arm and r["t_start_s"] < duration])
        assert all(r["ok"] for r in records if r["arm"] == arm)
        # constant arrivals every 1/rate s: the count in the window is rate * duration (±1 at the edges)
        assert abs(len(starts) - rate * duration) <= 1, len(starts)
        assert np.median(np.diff(starts)) == pytest.approx(1 / rate, abs=0.03)
    assert summary["mode"] == "open" and summary["dropped"] == 0
    assert summary["arrivals"] >= rate * duration
    assert generator_problem(GeneratorSummary.read(tmp_path / "load" / "summary.json"), 0.9, 60.0) is None


def _each_arm_takes_its_share_of_the_same_arrivals(records: list[dict[str, Any]]) -> None:
    by_arm = {arm: {r["pair"]: r for r in records if r["arm"] == arm} for arm in ("baseline", "candidate")}
    base, cand = by_arm["baseline"], by_arm["candidate"]
    assert set(base) < set(cand)  # a common random subset of the same arrivals
    assert all(base[k]["prompt_chars"] == cand[k]["prompt_chars"] for k in base)  # the same prompt
    assert all(abs(base[k]["t_start_s"] - cand[k]["t_start_s"]) < 0.5 for k in base)  # at the same time
    # Poisson thinned to 40%: about 16 of about 40 arrivals (a binomial share, loosely bounded)
    assert 0.15 < len(base) / len(cand) < 0.7, (len(base), len(cand))
    assert all(r["ok"] for r in records)


def test_late_arrivals_are_a_saturated_generator() -> None:
    summary = GeneratorSummary(
        wall_s=10.0,
        generator_cpu_s=2.0,
        generator_cpu_util=0.2,
        loop_lag_ms_p50=1.0,
        loop_lag_ms_p95=2.0,
        loop_lag_samples=500,
        users=1,
        locust_requests=120,
        locust_failures=0,
        records=120,
        stopped=Stopped("duration", 10.0),
        mode="open",
        arrivals=ArrivalStats(rate=6.0, arrivals=60, arrival_lag_ms_p95=85.0, dropped=0),
    )
    problem = generator_problem(summary, 0.9, 20)
    assert problem is not None and "arrivals 85 ms late" in problem
