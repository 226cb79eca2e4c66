"""The search runner's bookkeeping on gate runs that write what a real one writes (report.json,
run.json, request records): the recommendation, ratios against differing baselines, the ledger,
and resuming an interrupted search. The real gate runs are tests/search/test_search_integration.py."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gates.config import load_pipeline
from gates.config.parse import PipelineFile
from gates.config.search import Objective
from gates.errors import ExitCode
from gates.ledger import Ledger
from gates.loadgen.spec import RECORD_FIELDS
from gates.loadgen.stats import read_records
from gates.pipeline import RunOutcome
from gates.search.halving import Fate, Quality
from gates.search.measure import STOP_FILE, RungResult, cost_figures
from gates.search.report import write_report
from gates.search.run import search_pipeline
from gates.search.stop import CostCheck
from gates.stages import MEASURE_STAGES, Stage
from gates.stages.drift import DriftStage

PIPELINE = """
name: fake-search
model:
  source: builtin:tiny-llama
load:
  duration_s: 20
  warmup_s: 1
golden:
  suites: [golden_prompts/demo.jsonl]
gates:
  top1_agreement_min: 0.95
search:
  rungs: [0.25, 0.5, 1.0]
  axes:
    load.users: [1, 2, 3, 4]
"""

# per load.users: (ms per output token of the candidate, of its baseline, top-1 agreement, baseline build)
TRUTH: dict[int, tuple[float, float, float, str]] = {
    1: (4.0, 10.0, 0.90, "b" * 64),  # cheapest, but beyond the margin
    2: (6.0, 10.0, 1.00, "b" * 64),  # the answer
    3: (8.0, 10.0, 0.99, "b" * 64),  # passes, dearer
    4: (9.0, 10.0, 0.99, "b" * 64),
}


class FakeGateRun:
    """Writes what run_pipeline writes for a candidate whose figures are TRUTH[users]."""

    def __init__(self, truth: dict[int, tuple[float, float, float, str]], fail_after: int | None = None):
        self.truth, self.calls, self.fail_after = truth, [], fail_after
        self.rng = np.random.default_rng(0)
        self.drift_from: list[tuple[Path, Path | None]] = []  # (run dir, the earlier run its drift stage may take)
        self.stopped: list[int] = []  # load.users of the runs the search stopped after their load

    def __call__(
        self,
        pf: PipelineFile,
        root: Path,
        run_dir: Path,
        progress: Any,
        env: dict[str, str],
        stages: tuple[Stage, ...] = MEASURE_STAGES,
    ) -> RunOutcome:
        self.drift_from.append((run_dir, next(s.reuse for s in stages if isinstance(s, DriftStage))))
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            run_dir.mkdir(parents=True)  # interrupted mid-way through a gate run: partial files left
            (run_dir / "records.csv").write_text("arm,latency_ms\n")
            raise KeyboardInterrupt
        self.calls.append((pf.config.load.users, pf.config.load.duration_s))
        cand, base, top1, base_digest = self.truth[pf.config.load.users]
        run_dir.mkdir(parents=True)
        with (run_dir / "records.csv").open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=RECORD_FIELDS)
            w.writeheader()
            for i in range(int(pf.config.load.duration_s * 10)):
                for arm, mean in (("baseline", base), ("candidate", cand)):
                    ms = mean * 16 * self.rng.lognormal(0, 0.05)
                    w.writerow({"arm": arm, "user": 0, "t_start_s": 2 + i * 0.1, "latency_ms": ms, "ttft_ms": "",
                                "itl_ms": "", "ok": "1", "output_tokens": 16, "max_new_tokens": 16,
                                "prompt_chars": 10, "error": "", "pair": str(i)})  # fmt: skip
        rows = read_records(run_dir / "records.csv")
        check = next((x for x in stages if isinstance(x, CostCheck)), None)
        stopped = None
        if check is not None and check.objective == Objective.COST_AT_SLO:  # as the stage does, after the load
            log_ratio, se, own = cost_figures(cand, base, Objective.COST_AT_SLO, rows)
            partial = RungResult(str(run_dir), "", "", log_ratio, se, math.inf, 0.05, False, cand, base,
                                 None, None, own, base_digest, stopped="(not yet)")  # fmt: skip
            stopped = check.check(partial)
        if stopped is not None:
            self.stopped.append(pf.config.load.users)
            (run_dir / STOP_FILE).write_text(json.dumps({"reason": stopped}))
        verdict = "PASS" if top1 >= 0.95 else "FAIL"
        verdict = "INCONCLUSIVE" if stopped else verdict
        arm = {"latency_ms": {"p95": cand * 16}, "ms_per_output_token": cand}
        report = {
            "verdict": verdict,
            "reason": "fake",
            "candidate": {"build_digest": f"{pf.config.load.users:064d}", "build_path": None},
            "baseline": {"build_digest": base_digest, "build_path": None},
            "load": {"candidate": arm, "baseline": {"latency_ms": {"p95": base * 16}, "ms_per_output_token": base}},
            "drift": None if stopped else {"top1_agreement": top1},
            "gates": [{"name": "top1_agreement", "status": "NO_DATA" if stopped else verdict}],
            "quality": [],
            "cost": None,
            "capacity": None,
        }
        (run_dir / "report.json").write_text(json.dumps(report))
        (run_dir / "report.md").write_text("fake report")
        (run_dir / "report.html").write_text("<html></html>")
        (run_dir / "run.json").write_text(json.dumps({"durations_s": {"load": 1.5, "drift": 0.5}}))
        code = {"PASS": ExitCode.PASS, "FAIL": ExitCode.FAIL}.get(verdict, ExitCode.INFRA)
        return RunOutcome(run_dir.name, verdict, "fake", code, run_dir, run_dir / "report.md", None, None)


@pytest.fixture()
def pipeline(write_pipeline: Callable[..., Path]) -> PipelineFile:
    return load_pipeline(write_pipeline(PIPELINE))


def search(pf: PipelineFile, runner: FakeGateRun, tmp_path: Path):  # type: ignore[no-untyped-def]
    ledger = Ledger(str(tmp_path / "ledger.sqlite"))
    return search_pipeline(pf, tmp_path / "a", ledger, "tester", tmp_path / "s", lambda _: None, {}, runner), ledger


def test_the_cheapest_candidate_within_the_margin_is_recommended_and_recorded(
    pipeline: PipelineFile, tmp_path: Path
) -> None:
    runner = FakeGateRun(TRUTH)
    result, ledger = search(pipeline, runner, tmp_path)
    by_users = {c.values["load.users"]: c for c in result.candidates}
    assert by_users[1].fate == Fate.INFERIOR and by_users[1].quality == Quality.FAIL
    assert by_users[2].fate == Fate.CHEAPEST and result.recommended == by_users[2].name
    assert {by_users[3].fate, by_users[4].fate} == {Fate.DEARER}
    assert runner.calls == [(1, 5.0), (2, 5.0), (3, 5.0), (4, 5.0)]  # a quarter of the 20 s load each, then settled
    assert result.time_used == 1.0 and result.exit_code == ExitCode.PASS
    assert set(result.front) == {by_users[1].name, by_users[2].name}  # cheaper but worse; better and cheapest passing
    runs = {r.pipeline: r for r in ledger.runs()}
    assert runs[by_users[2].name].verdict == "PASS" and runs[by_users[2].name].digest == f"{2:064d}"
    assert runs[by_users[1].name].verdict == "FAIL" and len(runs) == 4
    ready = result.recommended_yaml.read_text()
    assert "users: 2" in ready and "search:" not in ready and "name: fake-search" in ready
    report = write_report(result)
    data = json.loads(report.json.read_text())
    assert data["search"]["recommended"]["name"] == by_users[2].name
    est = data["search"]["candidates"][1]["cost_ratio"]
    assert est["low"] < 0.6 < est["high"] and est["estimate"] == pytest.approx(0.6, rel=0.02)
    assert "**recommended**" in report.markdown.read_text()
    assert f'href="runs/{by_users[2].name}/rung-0/report.html"' in report.html.read_text()


def test_each_rung_after_the_first_may_take_the_previous_rungs_drift(pipeline: PipelineFile, tmp_path: Path) -> None:
    """Greedy drift does not change with the load share: rung k's gate run is offered rung k-1's
    drift (taken only when the builds, prompts and settings match: tests/stages/test_drift.py)."""
    # every one within the margin and about as dear as the others: none settles at the first rung
    truth = {k: (6.0 + 0.01 * k, b, 0.99, d) for k, (_, b, _, d) in TRUTH.items()}
    runner = FakeGateRun(truth)
    search(pipeline, runner, tmp_path)
    assert any(run_dir.name != "rung-0" for run_dir, _ in runner.drift_from)
    for run_dir, earlier in runner.drift_from:
        if run_dir.name == "rung-0":
            assert earlier is None
        else:
            assert earlier == run_dir.parent / f"rung-{int(run_dir.name.removeprefix('rung-')) - 1}"


def test_a_candidate_certainly_dearer_than_one_settled_at_its_rung_stops_before_its_quality_is_measured(
    pipeline: PipelineFile, tmp_path: Path
) -> None:
    # users=1: within the margin and the cheapest, measured first; users=2: five times dearer
    truth = {1: (4.0, 10.0, 1.00, "b" * 64), 2: (20.0, 10.0, 0.99, "b" * 64), 3: (4.1, 10.0, 0.99, "b" * 64),
             4: (4.2, 10.0, 0.99, "b" * 64)}  # fmt: skip
    runner = FakeGateRun(truth)
    result, ledger = search(pipeline, runner, tmp_path)
    by_users = {c.values["load.users"]: c for c in result.candidates}
    assert 2 in runner.stopped and 1 not in runner.stopped  # nothing was settled before users=1
    stopped = by_users[2]
    assert stopped.fate == Fate.DEARER and stopped.quality == Quality.INCONCLUSIVE and stopped.verdict == "INCONCLUSIVE"
    assert stopped.rungs[-1].stopped.startswith(f"certainly dearer than {by_users[1].name}")
    assert stopped.name not in result.front and result.recommended == by_users[1].name
    data = json.loads(write_report(result).json.read_text())
    row = next(c for c in data["search"]["candidates"] if c["name"] == stopped.name)
    assert row["quality_loss"] is None and row["cost_ratio"]["estimate"] == pytest.approx(2.0, rel=0.1)
    assert row["stopped_before_quality"] == stopped.rungs[-1].stopped and data["cost_scale"] == "ratio"
    assert data["time"]["gate_runs_s"] == pytest.approx(2.0 * len(runner.calls))  # every run.json's durations
    assert {r.pipeline: r for r in ledger.runs()}[stopped.name].verdict == "INCONCLUSIVE"
    again = FakeGateRun(truth)  # resumed: the stop is read back from the run's directory
    result2, _ = search(pipeline, again, tmp_path)
    assert again.calls == [] and {c.name: c.fate for c in result2.candidates} == {
        c.name: c.fate for c in result.candidates
    }


def test_past_the_invocations_max_minutes_no_further_gate_run_starts_and_the_next_continues(
    pipeline: PipelineFile, tmp_path: Path
) -> None:
    ledger = Ledger(str(tmp_path / "ledger.sqlite"))
    ticks = iter(range(0, 10_000, 40))  # each look at the clock: 40 s later
    first = FakeGateRun(TRUTH)
    args = (pipeline, tmp_path / "a", ledger, "t", tmp_path / "s", lambda _: None, {})
    cut = search_pipeline(*args, first, clock=lambda: float(next(ticks)), max_minutes=1)  # pipeline: no limit
    assert cut.out_of_time and 0 < len(first.calls) < 4 and cut.recommended is None
    rest = FakeGateRun(TRUTH)
    done = search_pipeline(*args, rest)
    whole = search_pipeline(pipeline, tmp_path / "a2", Ledger(str(tmp_path / "l2.sqlite")), "t", tmp_path / "s2",
                            lambda _: None, {}, FakeGateRun(TRUTH))  # fmt: skip
    assert not done.out_of_time and len(first.calls) + len(rest.calls) == sum(len(c.rungs) for c in whole.candidates)
    assert done.recommended is not None and done.recommended == whole.recommended


def test_ratios_to_different_baselines_are_not_compared(pipeline: PipelineFile, tmp_path: Path) -> None:
    # users=3 sits beside a far slower baseline (another engine): its ratio is the lowest, its cost is not
    truth = {**TRUTH, 3: (8.0, 40.0, 0.99, "c" * 64)}
    result, _ = search(pipeline, FakeGateRun(truth), tmp_path)
    by_users = {c.values["load.users"]: c for c in result.candidates}
    assert result.recommended == by_users[2].name and by_users[3].fate == Fate.DEARER
    data = json.loads(write_report(result).json.read_text())  # the cost column is each one's own value
    assert data["cost_scale"] == "own" and "| cost |" in write_report(result).markdown.read_text()


def test_a_run_that_failed_before_its_drift_is_a_failed_gate_without_a_quality_figure(
    pipeline: PipelineFile, tmp_path: Path
) -> None:
    class BuildFails(FakeGateRun):  # users=3: the engine refuses the build (OpenVINO int4, groups of 128 on 576)
        def __call__(self, pf: PipelineFile, root: Path, run_dir: Path, progress: Any, env: dict[str, str],
                     stages: tuple[Stage, ...] = MEASURE_STAGES) -> RunOutcome:  # fmt: skip
            if pf.config.load.users != 3:
                return super().__call__(pf, root, run_dir, progress, env, stages)
            run_dir.mkdir(parents=True)
            report = {"verdict": "INCONCLUSIVE", "reason": "internal error in gates: InvalidGroupSizeError",
                      "candidate": {}, "baseline": {}, "load": None, "drift": None, "gates": [],
                      "quality": []}  # fmt: skip
            (run_dir / "report.json").write_text(json.dumps(report))
            (run_dir / "run.json").write_text("{}")
            return RunOutcome(run_dir.name, "INCONCLUSIVE", "internal error", ExitCode.INFRA, run_dir, None, None)

    result, _ = search(pipeline, BuildFails(TRUTH), tmp_path)
    failed = next(c for c in result.candidates if c.values["load.users"] == 3)
    assert failed.fate == Fate.GATES_FAILED and failed.name not in result.front
    row = next(c for c in json.loads(write_report(result).json.read_text())["search"]["candidates"]
               if c["name"] == failed.name)  # fmt: skip
    assert row["quality_loss"] is None and row["verdict"] == "INCONCLUSIVE"


def test_no_candidate_passing_is_exit_1(pipeline: PipelineFile, tmp_path: Path) -> None:
    truth = {k: (c, b, 0.5, d) for k, (c, b, _, d) in TRUTH.items()}
    result, _ = search(pipeline, FakeGateRun(truth), tmp_path)
    assert result.recommended is None and result.exit_code == ExitCode.FAIL and result.recommended_yaml is None


def test_an_interrupted_search_resumes_where_it_stopped(pipeline: PipelineFile, tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        search(pipeline, FakeGateRun(TRUTH, fail_after=2), tmp_path)
    assert len(Ledger(str(tmp_path / "ledger.sqlite")).runs()) == 2  # each gate run recorded as it was read
    again = FakeGateRun(TRUTH)
    result, ledger = search(pipeline, again, tmp_path)
    assert again.calls == [(3, 5.0), (4, 5.0)]  # the first two were measured before the interruption
    assert result.recommended is not None and len(ledger.runs()) == 4
    third = FakeGateRun(TRUTH)
    result2, ledger = search(pipeline, third, tmp_path)
    assert third.calls == [] and result2.recommended == result.recommended and len(ledger.runs()) == 4


def test_the_report_is_posted_as_one_sticky_comment_with_its_own_status(pipeline: PipelineFile, tmp_path: Path) -> None:
    from gates.search.report import publish_search
    from gates.testing.github_server import GitHubTestServer

    result, _ = search(pipeline, FakeGateRun(TRUTH), tmp_path)
    report = write_report(result)
    sha = "0123456789abcdef0123456789abcdef01234567"
    with GitHubTestServer(token="t0ken") as gh:
        gh.add_pull_request("octo/models", 7)
        env = {"GITHUB_REPOSITORY": "octo/models", "GATES_PR_NUMBER": "7", "GITHUB_TOKEN": "t0ken",
               "GITHUB_API_URL": gh.url, "GATES_COMMIT_SHA": sha, "GATES_GITHUB_BACKOFF_S": "0"}  # fmt: skip
        assert publish_search(result, report, env) is not None
        assert publish_search(result, report, env) is not None  # again: the same comment, edited
        comments = gh.comments_on("octo/models", 7)
        assert len(comments) == 1 and comments[0]["_edits"] == 1 and result.recommended in comments[0]["body"]
        assert gh.combined_status("octo/models", sha)["gates/fake-search-search"]["state"] == "success"
    assert publish_search(result, report, {}) is None  # no GitHub target: nothing posted


def test_the_model_size_objective_is_exact_and_settles_on_the_first_rung(
    write_pipeline: Callable[..., Path], tmp_path: Path
) -> None:
    pf = load_pipeline(write_pipeline(PIPELINE.replace("search:\n", "search:\n  objective: model_size\n")))

    class Sized(FakeGateRun):
        def __call__(
            self,
            pf: PipelineFile,
            root: Path,
            run_dir: Path,
            progress: Any,
            env: dict[str, str],
            stages: tuple[Stage, ...] = MEASURE_STAGES,
        ) -> RunOutcome:
            out = super().__call__(pf, root, run_dir, progress, env, stages)
            for arm, size in (("baseline", 1000), ("candidate", 100 * (5 - pf.config.load.users))):
                (run_dir / arm).mkdir()
                (run_dir / arm / "model.bin").write_bytes(b"x" * size)
            report = json.loads((run_dir / "report.json").read_text())
            report["candidate"]["build_path"] = str(run_dir / "candidate")
            report["baseline"]["build_path"] = str(run_dir / "baseline")
            (run_dir / "report.json").write_text(json.dumps(report))
            return out

    runner = Sized(TRUTH)
    result, _ = search(pf, runner, tmp_path)
    by_users = {c.values["load.users"]: c for c in result.candidates}
    # the smallest build within the margin: users=4 (100 bytes); users=1 is smaller still but beyond it
    assert result.recommended == by_users[4].name and len(runner.calls) == 4
    assert by_users[4].observation is not None and by_users[4].observation.cost_se == 0.0
    assert by_users[4].rungs[-1].candidate_value == 100.0


def test_past_max_minutes_no_further_gate_run_starts(write_pipeline: Callable[..., Path], tmp_path: Path) -> None:
    pf = load_pipeline(write_pipeline(PIPELINE.replace("search:\n", "search:\n  max_minutes: 1\n")))
    ticks = iter(range(0, 10_000, 40))  # each look at the clock: 40 s later
    runner = FakeGateRun(TRUTH)
    ledger = Ledger(str(tmp_path / "ledger.sqlite"))
    result = search_pipeline(
        pf, tmp_path / "a", ledger, "t", tmp_path / "s", lambda _: None, {}, runner, clock=lambda: float(next(ticks))
    )
    assert result.out_of_time and 0 < len(runner.calls) < 4
    assert any(c.fate == Fate.UNMEASURED for c in result.candidates)
    assert json.loads(write_report(result).json.read_text())["time"]["out_of_time"] is True


def test_the_p95_objective_compares_the_arms_p95_with_a_bootstrap_interval(
    write_pipeline: Callable[..., Path], tmp_path: Path
) -> None:
    pf = load_pipeline(write_pipeline(PIPELINE.replace("search:\n", "search:\n  objective: p95_latency\n")))
    result, _ = search(pf, FakeGateRun(TRUTH), tmp_path)
    by_users = {c.values["load.users"]: c for c in result.candidates}
    assert result.recommended == by_users[2].name
    last = by_users[2].rungs[-1]
    assert (last.candidate_value, last.baseline_value) == (6.0 * 16, 10.0 * 16)
    assert 0 < last.cost_se < 0.05 and last.own_se < last.cost_se  # both arms' noise in the ratio
