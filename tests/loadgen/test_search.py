"""The load stage's capacity search: probes read in arrival order, the gain judged on its interval,
and load.capacity_search's rules."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path

import pytest

from gates.config import load_pipeline
from gates.config.schema import GatesSection
from gates.errors import ConfigError
from gates.judge.capacity import capacity_gain_gate
from gates.judge.verdict import Status
from gates.loadgen.capacity import SweepStep, capacity
from gates.loadgen.search import arm_probe

from .test_capacity import FAST, SLO, arm


def _rec(arm_name: str, t: float, ms: float, ok: bool = True) -> dict[str, object]:
    return {"arm": arm_name, "t_start_s": t, "latency_ms": ms, "ok": ok}


def test_a_probe_reads_its_window_in_arrival_order() -> None:
    # records come in completion order: the slow early request finished last
    records = [_rec("baseline", 2.0, 20.0), _rec("baseline", 3.0, 30.0, ok=False), _rec("baseline", 1.5, 900.0)]
    records += [_rec("baseline", 0.5, 1.0), _rec("candidate", 2.0, 5.0)]
    probe = arm_probe(records, "baseline", "latency_ms", 1.0, 10.0)  # type: ignore[arg-type]
    assert probe.samples == (900.0, 20.0) and probe.error_rate == pytest.approx(1 / 3)
    # what arrived in the measured span, failures included: 3 requests in 9 s
    assert probe.offered == pytest.approx(3 / 9)


@pytest.mark.parametrize(
    ("interval", "status"),
    [((1.25, 1.40), Status.PASS), ((1.05, 1.40), Status.INCONCLUSIVE), ((0.80, 1.10), Status.FAIL)],
)
def test_the_gain_is_judged_on_the_search_interval(interval: tuple[float, float], status: Status) -> None:
    grid = capacity("rate", [SweepStep(1.0, arm(FAST), arm(FAST), None)], SLO, 0.01, 0.99, None)
    cap = dataclasses.replace(
        grid,
        baseline=dataclasses.replace(grid.baseline, max_rate=2.0, low=1.9, high=2.1),
        candidate=dataclasses.replace(grid.candidate, max_rate=2.6, low=2.5, high=2.7),
        gain_interval=interval,
        search={"probes_per_arm": 9},
    )
    est, low, high = cap.gain()
    assert est == pytest.approx(1.3) and (low, high) == interval
    gate = capacity_gain_gate(cap, GatesSection(capacity_gain_min=1.2), None)
    assert gate.status == status
    assert cap.to_json()["search"] == {"probes_per_arm": 9}
    assert not math.isnan(cap.to_json()["gain"])


BASE = """
name: ok
model:
  source: builtin:tiny-llama
golden:
  suites: [golden_prompts/demo.jsonl]
load:
"""


def test_capacity_search_config(write_pipeline: Callable[..., Path]) -> None:
    ok = BASE + "  mode: open\n  rate: 1\n  slo: {ttft_ms: 500}\n  capacity_search: {start: 2, max_probes: 10}\n"
    s = load_pipeline(write_pipeline(ok)).config.load.capacity_search
    assert s is not None and s.slo_metric({"ttft_ms": 500.0}) == "ttft_ms"
    for bad, why in [
        ("  users: 2\n  slo: {ttft_ms: 500}\n  capacity_search: {}\n", "needs load.mode: open"),
        ("  mode: open\n  rate: 1\n  capacity_search: {}\n", "one SLO metric"),
        ("  mode: open\n  rate: 1\n  slo: {ttft_ms: 5, latency_ms: 9}\n  capacity_search: {}\n", "one SLO metric"),
        ("  mode: open\n  rate: 1\n  slo: {ttft_ms: 5}\n  capacity_search: {metric: itl_ms}\n", "no limit"),
    ]:
        with pytest.raises(ConfigError, match=why):
            load_pipeline(write_pipeline(BASE + bad))
