"""Requests per arm before a run, and which gates they leave without a verdict (issue 31 item 4)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gates.config.parse import parse_pipeline
from gates.config.requests import quantile_min_samples, requests_needed, requests_target
from gates.config.schema import Pipeline
from gates.judge.tail import min_samples
from gates.loadgen.spec import LoadSpec
from gates.stages.estimate import (
    ArmRate,
    estimate_points,
    estimate_requests,
    expected_requests,
    last_run_rate,
    operating_points,
    rough_rate,
)

REPO = Path(__file__).resolve().parents[2]
BASE = "name: p\nmodel:\n  source: builtin:tiny-llama\ngolden:\n  suites: [a.jsonl]\n"


def config(extra: str = "") -> Pipeline:
    return parse_pipeline(BASE + extra, Path("pipelines/p.yaml")).config


def test_the_quantile_rule_is_the_judges() -> None:
    for q in (0.5, 0.9, 0.95, 0.99):
        assert quantile_min_samples(q) == min_samples(q)


def test_each_declared_gate_says_what_it_needs() -> None:
    need = requests_needed(config("gates:\n  min_requests: 30\n  latency_p99_ratio_max: 1.3\n").gates)
    assert need == {
        "metric latency_ms": 30,
        "metric output_tokens_per_s": 30,
        "latency_p95_ratio": 40,
        "latency_p99_ratio": 1000,  # certified on 1,000 per arm at least (issue 30)
    }
    assert requests_needed(config("gates:\n  latency_p95_ratio_max: null\n  min_requests: 50\n").gates) == {
        "metric latency_ms": 50,
        "metric output_tokens_per_s": 50,
    }


def test_the_demo_load_runs_until_its_tail_gate_has_enough() -> None:
    """The demo stopped at min_requests (30) while its p95 tail gate needs 40, in 4 of 6 runs seen."""
    demo = parse_pipeline((REPO / "pipelines" / "demo.yaml").read_text(), REPO / "pipelines" / "demo.yaml").config
    assert demo.gates.min_requests < 40 == requests_target(demo.gates)
    spec = LoadSpec.from_config(demo, "127.0.0.1:1", {"baseline": "b", "candidate": "c"}, ["hello"], [1.0])
    assert spec.min_requests == 40


def test_a_short_load_names_the_gates_and_the_setting_that_fixes_it() -> None:
    cfg = config("load:\n  users: 1\n  duration_s: 10\n  warmup_s: 2\n")
    est = estimate_requests(cfg, ArmRate(0.75, "measured"))
    assert est.expected == 6  # 0.75/s over the 8 s after the warm-up
    assert set(est.short) == {"metric latency_ms", "metric output_tokens_per_s", "latency_p95_ratio"}
    line = est.warning()
    assert line is not None and line.startswith("~6 requests per arm expected (measured); ")
    assert "metric latency_ms, metric output_tokens_per_s need 30; latency_p95_ratio needs 40" in line
    assert "set load.max_duration_s to ~60" in line  # 2 s + 40 / 0.75 = 55.3 s, rounded up


def test_max_duration_carries_the_load_to_the_target_and_no_further() -> None:
    cfg = config("load:\n  duration_s: 10\n  warmup_s: 2\n  max_duration_s: 300\n")
    assert expected_requests(cfg, 0.75) == 40  # past duration_s only until every gate has enough
    assert expected_requests(cfg, 20.0) == 160  # duration_s alone gets more
    assert estimate_requests(cfg, ArmRate(0.75, "m")).warning() is None
    short = estimate_requests(cfg, ArmRate(0.1, "m")).warning()
    assert short is not None and short.endswith("raise load.max_duration_s to ~420")  # 2 + 400 s, by the minute


def test_the_last_runs_report_gives_the_rate_scaled_to_the_users(tmp_path: Path) -> None:
    cfg = config("load:\n  users: 8\n")
    arm = {"requests": 48, "errors": 2, "window_s": 23.0}
    other = tmp_path / "other" / "report.json"
    other.parent.mkdir()
    other.write_text(json.dumps({"pipeline": "q", "load": {"baseline": arm, "candidate": arm, "users": 1}}))
    mine = tmp_path / "mine" / "report.json"
    mine.parent.mkdir()
    load = {"baseline": arm, "candidate": {**arm, "requests": 70}, "users": 4}
    mine.write_text(json.dumps({"pipeline": "p", "load": load}))
    rate = last_run_rate(cfg, [tmp_path / "missing.json", other, mine])
    assert rate is not None and rate.per_s == pytest.approx(2 * 46 / 23.0)  # the slower arm, ×8/4 users
    assert f"measured by the run in {mine.parent} with 4 users, scaled to load.users 8" in rate.source


def test_the_rough_model_is_stated() -> None:
    rate = rough_rate(config("load:\n  users: 2\n  max_new_tokens: 10\n"), "cpu")
    assert rate.per_s == pytest.approx(2 / (10 * 0.14))
    assert rate.source.startswith("rough model, no run measured yet: 2 users")
    open_loop = rough_rate(config("load:\n  mode: open\n  rate: 3\n"), "cpu")
    assert open_loop.per_s == 3 and "open loop" in open_loop.source


def test_each_operating_point_is_estimated_with_its_own_gates(tmp_path: Path) -> None:
    """The latency point (one request in flight per arm) judges the gates again as <gate>@latency."""
    both = config("load:\n  users: 8\n  duration_s: 30\n  warmup_s: 3\n")
    assert operating_points(both) == ["throughput", "latency"]
    assert operating_points(config("load:\n  users: 1\n")) == ["throughput"]  # one user is both points
    assert operating_points(config("load:\n  operating_points: [latency]\n")) == ["latency"]
    arm = {"requests": 30, "errors": 0, "window_s": 27.0}
    point = {"name": "latency", "concurrency": 1, "rate": None, "baseline": arm, "candidate": arm, "gates": []}
    load = {"baseline": {**arm, "requests": 270}, "candidate": {**arm, "requests": 270}, "users": 8}
    report = tmp_path / "run" / "report.json"
    report.parent.mkdir()
    report.write_text(json.dumps({"pipeline": "p", "load": {**load, "operating_points": [point]}}))
    throughput, latency = estimate_points(both, [report], "cpu")
    assert (throughput.point, throughput.expected, throughput.short) == ("throughput", 270, {})
    assert (latency.point, latency.expected) == ("latency", 30)
    assert set(latency.short) == {"latency_p95_ratio@latency"}
    line = latency.warning()
    assert line is not None and "expected at the latency point (one request in flight per arm) (" in line
    assert line.endswith(
        "set load.max_duration_s to ~40 (past load.duration_s the load goes on until every gate has its requests)"
    )
