"""``gates search``: every candidate of the space measured by the pipeline's own gate runs, under the
stopping rule of gates/search/halving.py, then the front, the recommendation and the report.

Each rung of a candidate is one gate run (:func:`gates.pipeline.run_pipeline`: preflight, optimize
and build from the content-addressed cache, the candidate served beside the one baseline, load,
drift, quality, judge, report) on a share of the pipeline's load, in
``<search>/runs/<candidate>/rung-<k>/``. A rung whose run.json is there is read back, not run
again: an interrupted search started again continues where it stopped, with the same decisions
(the rule is deterministic given the measurements). Each measured candidate's last gate run is
recorded in the ledger under the candidate's name, with its build digest, like ``gates run``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from gates.artifacts import ArtifactStore
from gates.config.names import config_key
from gates.config.parse import PipelineFile, parse_pipeline
from gates.context import RunContext
from gates.errors import BadInputError, CapabilityError, ExitCode, InfraError
from gates.journal import Journal
from gates.ledger import Ledger
from gates.pipeline import RunOutcome, run_pipeline
from gates.promotion.gate import record_run
from gates.search.halving import Fate, Observation, Quality, Rule, dearer_than, search
from gates.search.measure import RungResult, pooled, read_rung
from gates.search.space import Candidate, SearchSpace, expand, write_candidate
from gates.search.stop import CostCheck
from gates.stages import MEASURE_STAGES, Stage
from gates.stages.drift import DriftStage
from gates.stages.load import LoadStage
from gates.stages.preflight import PreflightStage

Runner = Callable[..., RunOutcome]
PUBLISH_ENV = ("GATES_PR_NUMBER",)  # a rung's gate run posts nothing: the search posts one comment


@dataclasses.dataclass(frozen=True)
class CandidateResult:
    name: str
    label: str
    values: dict[str, Any]
    fate: Fate
    quality: Quality
    spent: float  # share of a full measurement used
    rungs: tuple[RungResult, ...]
    observation: Observation | None
    pipeline_yaml: Path
    verdict: str  # the gate verdict of its last rung ("" when unmeasured)

    @property
    def last(self) -> RungResult | None:
        return self.rungs[-1] if self.rungs else None


@dataclasses.dataclass(frozen=True)
class SearchResult:
    pipeline: PipelineFile
    space: SearchSpace
    directory: Path
    candidates: tuple[CandidateResult, ...]
    front: tuple[str, ...]  # candidate names on the Pareto front of cost and quality loss
    recommended: str | None
    recommended_yaml: Path | None
    time_used: float
    time_full: float
    wall_s: float
    out_of_time: bool
    rule: Rule

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.PASS if self.recommended is not None else ExitCode.FAIL


def rung_pipeline(candidate: Candidate, share: float) -> PipelineFile:
    """The candidate with its load cut to ``share`` of the pipeline's (the rest of the config as it is)."""
    data = yaml.safe_load(candidate.yaml)
    load = dict(data.get("load") or {})
    full = candidate.pipeline.config.load
    duration = max(full.duration_s * share, full.warmup_s + 1.0)
    load["duration_s"] = round(duration, 3)
    if full.max_duration_s is not None:
        load["max_duration_s"] = round(max(full.max_duration_s * share, duration), 3)
    for key in ("adaptive", "min_duration_s"):  # the search's own rule decides when a candidate stops
        load.pop(key, None)
    data["load"] = load
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    pf = parse_pipeline(text, candidate.pipeline.path)
    return dataclasses.replace(pf, root=candidate.pipeline.root)


def rung_stages(previous: Path | None, check: CostCheck | None = None) -> tuple[Stage, ...]:
    """A rung's gate-run stages. After the first rung, the drift stage takes the previous rung's
    drift when it was measured on the same builds, prompts and settings (greedy answers do not
    change with the load share; gates/stages/drift_reuse.py), and measures afresh otherwise.
    ``check`` runs right after the load (gates/search/stop.py)."""
    stages: list[Stage] = []
    for s in MEASURE_STAGES:
        stages.append(DriftStage(reuse=previous) if isinstance(s, DriftStage) and previous is not None else s)
        if isinstance(s, LoadStage) and check is not None:
            stages.append(check)
    return tuple(stages)


def search_dir(pf: PipelineFile, space: SearchSpace, artifacts_root: Path) -> Path:
    return artifacts_root / "searches" / f"{pf.config.name}-{space.digest[:12]}"


def _no_report(run_dir: Path, outcome: RunOutcome | None, margin: float) -> RungResult:
    reason = outcome.reason if outcome is not None else "the run left no report"
    verdict = outcome.verdict if outcome is not None else "INCONCLUSIVE"
    return RungResult(
        str(run_dir), verdict, reason, math.inf, math.inf, math.inf, margin, False, None, None, None, None
    )


def preflight_all(pf: PipelineFile, space: SearchSpace, artifacts_root: Path, progress: Callable[[str], None]) -> None:
    """Every candidate through a run's preflight (the engine's rules, data files, this machine)
    before anything is built: a combination the engine refuses is exit 2 (3: this machine cannot
    run it), naming the search.axes line and the candidate's values."""
    store = ArtifactStore(artifacts_root)
    for c in space.candidates:
        with tempfile.TemporaryDirectory(prefix="gates-search-") as tmp:
            ctx = RunContext(c.pipeline, store, Path(tmp) / "run", "search-preflight", progress=lambda _: None)
            try:
                PreflightStage().run(ctx)
            except (BadInputError, CapabilityError) as exc:
                line = pf.lines.get(("search", "axes"), 1)
                raise type(exc)(
                    f"{pf.path}:{line}: search candidate {c.label()} ({c.name}) is refused before anything is "
                    f"built:\n{exc}"
                ) from None
    progress(f"search: preflight passed for {len(space.candidates)} candidates")


def search_pipeline(
    pf: PipelineFile,
    artifacts_root: Path,
    ledger: Ledger,
    actor: str,
    output_dir: Path | None = None,
    progress: Callable[[str], None] = print,
    env: Mapping[str, str] | None = None,
    runner: Runner = run_pipeline,
    clock: Callable[[], float] = time.monotonic,
    max_minutes: float | None = None,
) -> SearchResult:
    """Search ``pf``'s space (refused with exit 2 before anything is built when it is bad).

    ``max_minutes``: this invocation's budget instead of ``search.max_minutes`` (a search run in
    chunks: past it no further gate run starts, and the next invocation continues from there)."""
    space = expand(pf)
    section = space.section
    preflight_all(pf, space, artifacts_root, progress)
    folder = output_dir or search_dir(pf, space, artifacts_root)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [write_candidate(c, folder / "candidates") for c in space.candidates]
    g = pf.config.gates
    # without a top-1 threshold the top-1 loss is no gate: the pipeline's own quality gates decide
    margin = 1.0 - g.top1_agreement_min if g.top1_agreement_min is not None else 1.0
    rule = Rule(
        rungs=tuple(section.rungs),
        false_recommend=section.false_recommend,
        cost_error=section.cost_error,
        spending=section.spending.value,
        futility=section.futility,
        miss_error=section.miss_error,
    )
    run_env = {k: v for k, v in (env or {}).items() if k not in PUBLISH_ENV}
    started = clock()
    minutes = max_minutes if max_minutes is not None else section.max_minutes
    budget_s = minutes * 60.0 if minutes is not None else math.inf
    rungs: dict[int, list[RungResult]] = {i: [] for i in range(len(space.candidates))}
    stopped_for_time = [False]
    progress(
        f"search: {len(space.candidates)} candidates, rungs {list(rule.rungs)} of the load, "
        f"objective {section.objective}"
    )

    def measure(i: int, r: int) -> Observation:
        c = space.candidates[i]
        run_dir = folder / "runs" / c.name / f"rung-{r}"
        outcome: RunOutcome | None = None
        if (run_dir / "run.json").is_file():
            progress(f"search: {c.name} ({c.label()}) rung {r}: measured before, read back")
        else:
            share = rule.rungs[r] - (rule.rungs[r - 1] if r else 0.0)
            if run_dir.exists():  # a gate run interrupted before it finished: its partial files go
                shutil.rmtree(run_dir)
            progress(f"search: {c.name} ({c.label()}) rung {r}: {share:.0%} of the load")
            outcome = runner(
                rung_pipeline(c, share),
                artifacts_root,
                run_dir,
                lambda line: progress(f"  {c.name}: {line}"),
                env=run_env,
                stages=rung_stages(
                    Path(rungs[i][-1].run_dir) if rungs[i] else None,
                    CostCheck(section.objective, margin, lambda partial: stop_early(i, r, partial)),
                ),
            )
        try:
            result = read_rung(run_dir, section.objective, margin)
        except InfraError as exc:  # no report (the run failed before it had one): no verdict for it
            progress(f"search: {c.name}: {exc}")
            result = _no_report(run_dir, outcome, margin)
        rungs[i].append(result)
        _record(ledger, c.name, result, paths[i], actor, artifacts_root, progress)
        (run_dir.parent / "rungs.json").write_text(json.dumps([x.to_json() for x in rungs[i]], indent=2))
        return observe(i)

    def observe(i: int, partial: tuple[int, RungResult] | None = None) -> Observation:
        """Candidate i's cumulative observation; ``partial``: (candidate, its rung so far) counted too."""
        extra = [partial[1]] if partial else []
        # ratios to the baseline compare only when every candidate was measured against the same one
        seen = [r for rs in rungs.values() for r in rs] + extra
        absolute = len({r.baseline_digest for r in seen if r.baseline_digest}) > 1
        mine = rungs[i] + (extra if partial and partial[0] == i else [])
        obs = pooled(mine, absolute)
        if not math.isfinite(mine[-1].drop) and not mine[-1].stopped:  # no measurement at all: out, as a failed gate
            obs = dataclasses.replace(obs, drop=0.0, gates_pass=False)
        return obs

    def stop_early(i: int, r: int, partial: RungResult) -> str | None:
        """Why candidate i's rung-r run stops after its load: certainly dearer than a candidate
        already measured at this rung and settled non-inferior (halving.dearer_than); else None."""
        others = [(j, observe(j, (i, partial))) for j in rungs if j != i and len(rungs[j]) == r + 1]
        j = dearer_than(observe(i, (i, partial)), others, rule, len(space.candidates), r)
        if j is None:
            return None
        c = space.candidates[j]
        return f"certainly dearer than {c.name} ({c.label()}), settled non-inferior at this rung"

    def out_of_time() -> bool:
        stopped_for_time[0] = stopped_for_time[0] or clock() - started > budget_s
        return stopped_for_time[0]

    outcome = search(len(space.candidates), rule, measure, out_of_time, observe)
    results = []
    for t, c, path in zip(outcome.tracks, space.candidates, paths, strict=True):
        last = rungs[t.index][-1] if rungs[t.index] else None
        results.append(
            CandidateResult(
                c.name,
                c.label(),
                c.values,
                t.fate,
                t.quality,
                t.spent,
                tuple(rungs[t.index]),
                t.last,
                path,
                last.verdict if last else "",
            )
        )
    recommended = _recommend(results)
    front = pareto_front(results)
    rec = next((r for r in results if r.name == recommended), None)
    rec_yaml = None
    if rec is not None:
        rec_yaml = folder / "recommended.yaml"
        rec_yaml.write_text(_ready_yaml(pf, rec))
    return SearchResult(
        pf,
        space,
        folder,
        tuple(results),
        front,
        recommended,
        rec_yaml,
        outcome.time_used,
        outcome.time_full,
        clock() - started,
        stopped_for_time[0],
        rule,
    )


def _recommend(results: list[CandidateResult]) -> str | None:
    """The cheapest candidate settled non-inferior whose last gate run PASSed every gate."""
    ok = [r for r in results if r.quality == Quality.PASS and r.verdict == "PASS" and r.observation is not None]
    best = min(ok, key=lambda r: r.observation.cost if r.observation else math.inf, default=None)
    return best.name if best else None


def pareto_front(results: list[CandidateResult] | tuple[CandidateResult, ...]) -> tuple[str, ...]:
    """Candidates no other one beats on both cost and quality loss (measured ones only)."""
    pts = [
        (r.name, r.observation.cost, r.observation.drop)
        for r in results
        if r.observation and r.rungs and r.observation.quality_measured  # stopped on cost alone: loss unknown
    ]
    pts = [p for p in pts if math.isfinite(p[1]) and p[1] < 1e8]
    front = [
        n for n, c, d in pts if not any((c2 <= c and d2 <= d) and (c2 < c or d2 < d) for n2, c2, d2 in pts if n2 != n)
    ]
    return tuple(sorted(front, key=lambda n: next(c for m, c, _ in pts if m == n)))


def _ready_yaml(pf: PipelineFile, rec: CandidateResult) -> str:
    """The recommended candidate as a pipeline to put in a PR: the user's file, the search's values
    written in, search: removed, the original name kept."""
    data = yaml.safe_load(rec.pipeline_yaml.read_text())
    data["name"] = pf.config.name
    values = ", ".join(f"{k}={v}" for k, v in rec.values.items())
    head = f"# recommended by gates search on {pf.path.name}: {values}\n"
    return head + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def _record(
    ledger: Ledger,
    name: str,
    last: RungResult,
    pipeline_yaml: Path,
    actor: str,
    root: Path,
    progress: Callable[[str], None],
) -> None:
    """A candidate's gate run in the ledger as soon as it is read, under the candidate's name with its
    build digest (once: a resumed search that reads it back does not record it again)."""
    if any(run.run_dir == last.run_dir for run in ledger.runs(name)):
        return
    run_dir = Path(last.run_dir)
    md, js = run_dir / "report.md", run_dir / "report.json"
    outcome = RunOutcome(
        run_dir.name,
        last.verdict,
        last.reason,
        ExitCode.PASS,
        run_dir,
        md if md.exists() else None,
        js if js.exists() else None,
        last.digest,
    )
    record_run(
        ledger,
        name,
        outcome,
        actor,
        None,
        None,
        Journal(root),
        progress,
        config=config_key(pipeline_yaml, Path.cwd()),
    )
