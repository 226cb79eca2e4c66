"""Load modes are plugins: a new one is its module and one registry entry; the built-ins follow suit."""

from __future__ import annotations

import dataclasses
import itertools
import json
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gates.config import load_pipeline
from gates.config.load_modes import check_modes
from gates.config.requests import requests_target
from gates.config.schema import Pipeline
from gates.errors import InfraError
from gates.loadgen.spec import LoadSpec
from gates.loadgen.summary import ArrivalStats, GeneratorSummary, Stopped
from gates.loadgen.sweep import step_spec
from gates.loadmodes import LOAD_MODES, Arrivals, LoadMode, Users

PIPELINE = """
name: ok
model:
  source: builtin:tiny-llama
golden:
  suites: [golden_prompts/demo.jsonl]
load:
  users: 3
  duration_s: 8
  warmup_s: 1
"""

# A trivial mode, as a team would write one in its own package: pairs arrive two at a time, a
# burst every 1/rate seconds, three bursts in all. Its module is the whole of the mode.
BURST = textwrap.dedent(
    """
    from gates.loadmodes import Arrivals

    class BurstMode:
        sweep_over = "rate"
        sweep_unit = "bursts/s"

        def check(self, rate, sweep):
            if rate is None:
                raise ValueError("load.mode 'burst' needs load.rate (bursts/s)")

        def pacing(self, spec):
            return Arrivals(iter([i // 2 / spec.rate for i in range(6)]))

        def sweep_step(self, spec, value):
            return {"rate": value}

        def describe(self, spec):
            return f"bursts of 2 at {spec.rate:g}/s"

        def report_arrivals(self, arrivals):
            return "bursts"

        def title(self, load):
            return f"bursts of 2 at {load['rate']:g}/s"
    """
)


@pytest.fixture()
def burst_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    package = tmp_path / "team_modes"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "burst.py").write_text(BURST)
    monkeypatch.syspath_prepend(str(tmp_path))
    LOAD_MODES.register("burst", "team_modes.burst:BurstMode")  # the one entry
    try:
        yield "burst"
    finally:
        LOAD_MODES.unregister("burst")


def _config(write_pipeline: Callable[..., Path], mode: str, rate: float | None) -> Pipeline:
    config = load_pipeline(write_pipeline(PIPELINE)).config
    # a mode registered from outside has no LoadMode member, so YAML cannot name it: set it as
    # validation would have (the member is what makes it a value of load.mode)
    load = config.load.model_copy(update={"mode": mode, "rate": rate})
    return config.model_copy(update={"load": load})


def test_a_mode_in_its_own_module_with_one_registry_entry_paces_the_load(
    burst_mode: str, write_pipeline: Callable[..., Path]
) -> None:
    import gevent  # imported, never monkey-patched, in the test process

    from gates.loadgen.open_loop import OpenLoop

    config = _config(write_pipeline, burst_mode, 100.0)
    spec = LoadSpec.from_config(config, "127.0.0.1:9", {"baseline": "b", "candidate": "c"}, ["hi", "yo"], [0.5, 0.5])
    assert (spec.mode, spec.rate, spec.users) == ("burst", 100.0, 3)
    assert LOAD_MODES[spec.mode].describe(spec) == "bursts of 2 at 100/s"
    with pytest.raises(ValueError, match=r"'burst' needs load\.rate"):  # its own config rules
        check_modes(burst_mode, None, None, {})  # type: ignore[arg-type]

    pacing = LOAD_MODES[spec.mode].pacing(spec)
    assert isinstance(pacing, Arrivals)
    # the worker's scheduler sends a pair at each of the mode's times, and no other
    sent: list[tuple[str, str, int]] = []

    def sender(client: Any, arm: str, model: str, prompt: str, max_new: int, t0: float, arrival: int) -> dict[str, Any]:
        sent.append((arm, model, arrival))
        return {"arm": arm, "user": arrival, "error": ""}

    records: list[dict[str, Any]] = []
    loop = OpenLoop(spec, pacing.times, records.append, sender)
    scheduler = gevent.spawn(loop.run, time.monotonic())
    scheduler.join(timeout=60)  # the mode's schedule is finite: the scheduler ends with it
    assert scheduler.dead, "the scheduler did not follow the mode's (finite) schedule"
    loop.drain(5.0)
    assert sorted(sent) == sorted((arm, model, i) for i in range(6) for arm, model in spec.arms.items())
    assert len(records) == 12 and loop.summary().arrivals == 6 and loop.summary().dropped == 0


def test_the_builtin_modes_are_registry_entries() -> None:
    assert set(LOAD_MODES) == set(LoadMode)
    spec = LoadSpec(
        url="127.0.0.1:9",
        arms={"baseline": "b", "candidate": "c"},
        prompts=("hi",),
        prompt_weights=(1.0,),
        users=5,
        spawn_rate=5.0,
        duration_s=8.0,
        max_new_tokens=1,
        max_new_tokens_max=1,
        timeout_s=1.0,
        mode=LoadMode.open,
        rate=4.0,
        arrivals="constant",
    )
    opened = LOAD_MODES[LoadMode.open].pacing(spec)
    assert isinstance(opened, Arrivals) and list(itertools.islice(opened.times, 3)) == [0.0, 0.25, 0.5]
    assert LOAD_MODES[LoadMode.closed].pacing(spec) == Users(5)
    # a sweep step sets what the mode says, on the main window's spec
    step = step_spec(spec, 8.0, 2, 5.0, 1.0)
    assert (step.rate, step.users, step.duration_s, step.warmup_s, step.seed) == (8.0, 5, 5.0, 1.0, 3)
    step = step_spec(dataclasses.replace(spec, mode=LoadMode.closed, rate=None), 8.0, 0, 5.0, 1.0)
    assert (step.rate, step.users, step.spawn_rate) == (None, 8, 8.0)


def test_spec_from_config_is_what_the_load_stage_asks_for(write_pipeline: Callable[..., Path]) -> None:
    config = load_pipeline(write_pipeline(PIPELINE)).config
    spec = LoadSpec.from_config(config, "h:1", {"baseline": "b", "candidate": "c"}, ["p"], [1.0])
    assert (spec.mode, spec.users, spec.spawn_rate, spec.duration_s, spec.warmup_s) == ("closed", 3, 3.0, 8.0, 1.0)
    assert (spec.rate, spec.adaptive, spec.min_requests, spec.max_duration_s) == (None, None, 0, None)
    assert spec.max_new_tokens_max == spec.max_new_tokens == config.load.max_new_tokens
    adaptive = load_pipeline(
        write_pipeline(PIPELINE + "  adaptive: true\n  max_duration_s: 20\n  min_duration_s: 4\n")
    ).config
    spec = LoadSpec.from_config(adaptive, "h:1", {"baseline": "b", "candidate": "c"}, ["p"], [1.0])
    assert spec.adaptive is not None and spec.adaptive["first_look_s"] == 4.0
    # on past duration_s until every declared gate has its requests: the p95 tail needs 40 (issue 31)
    assert spec.min_requests == requests_target(adaptive.gates) == 40 and spec.max_duration_s == 20.0


# summary.json as the worker wrote it before it was typed: the keys report.json's load.generator shows
CLOSED_SUMMARY = {
    "wall_s": 8.4,
    "generator_cpu_s": 1.2,
    "generator_cpu_util": 0.142,
    "loop_lag_ms_p50": 0.4,
    "loop_lag_ms_p95": 1.9,
    "loop_lag_samples": 400,
    "users": 4,
    "locust_requests": 96,
    "locust_failures": 0,
    "records": 96,
    "stopped": {"reason": "duration", "duration_s": 8.2},
    "mode": "closed",
}
OPEN_SUMMARY = {
    **CLOSED_SUMMARY,
    "stopped": {
        "reason": "settled",
        "duration_s": 14.0,
        "decision": "pass",
        "detail": "shift within",
        "looks": [{"n_baseline": 40, "n_candidate": 41, "fraction": 0.5}],
    },
    "mode": "open",
    "rate": 6.0,
    "arrivals": 84,
    "arrival_lag_ms_p95": None,
    "dropped": 0,
}


@pytest.mark.parametrize("data", [CLOSED_SUMMARY, OPEN_SUMMARY], ids=["closed", "open"])
def test_summary_round_trips_keys_and_order(data: dict[str, Any], tmp_path: Path) -> None:
    summary = GeneratorSummary.from_json(data)
    assert json.dumps(summary.to_json()) == json.dumps(data)
    summary.write(tmp_path / "summary.json")
    assert GeneratorSummary.read(tmp_path / "summary.json") == summary


def test_summary_types_what_the_stage_reads() -> None:
    s = GeneratorSummary.from_json(OPEN_SUMMARY)
    assert s.arrivals == ArrivalStats(6.0, 84, None, 0)
    assert s.stopped is not None and s.stopped.looks is not None and s.stopped.looks[0].n_candidate == 41
    assert GeneratorSummary.from_json(CLOSED_SUMMARY).stopped == Stopped("duration", 8.2)


@pytest.mark.parametrize("text", ["", "{}", '{"wall_s": "x"}', "[]"])
def test_an_unreadable_summary_is_an_infrastructure_fault_naming_the_file(text: str, tmp_path: Path) -> None:
    path = tmp_path / "summary.json"
    path.write_text(text)
    with pytest.raises(InfraError, match=r"summary\.json is unreadable"):
        GeneratorSummary.read(path)
