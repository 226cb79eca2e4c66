"""The typed run record: the frozen result of every stage, in one place.

Stages add their result to the context's :class:`RunRecord`; the judge, the report, the ledger
and publishing read it. Nothing here measures anything: these are the shapes of what was measured.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, TypeVar

from gates.artifacts import EngineBuild, ModelRef
from gates.judge.quality import QualityEntry
from gates.judge.verdict import Verdict
from gates.loadgen.capacity import Capacity
from gates.loadgen.classes import ClassFigures
from gates.loadgen.stats import ArmLoad
from gates.loadgen.summary import GeneratorSummary, Stopped
from gates.quality.batched import BatchedAgreement
from gates.quality.corpus import CorpusDocument
from gates.quality.corpus_scoring import CorpusRun
from gates.quality.drift import DriftSummary, PromptDrift
from gates.quality.golden import GoldenPrompt, Sample
from gates.quality.lm_eval_tasks import TaskSamples, TaskSpec
from gates.quality.scoring import ChoiceItem, ChoiceScore, Document, DocumentScore
from gates.triton.metrics import ModelWindow
from gates.triton.server import TritonServer

T = TypeVar("T")


# preflight
@dataclasses.dataclass(frozen=True)
class PreflightResult:
    golden: tuple[GoldenPrompt, ...]
    calibration: tuple[Sample, ...]  # plain texts or chats (rendered with the model's template)
    quant_path: str  # "real" | "simulated"
    note: str
    choices: tuple[ChoiceItem, ...] = ()  # golden.multiple_choice items
    documents: tuple[Document, ...] = ()  # golden.perplexity documents
    warnings: tuple[str, ...] = ()
    lm_eval: tuple[TaskSpec, ...] = ()  # golden.lm_eval tasks
    corpus: tuple[CorpusDocument, ...] = ()  # golden.drift_corpus documents


# optimize
@dataclasses.dataclass(frozen=True)
class OptimizeResult:
    baseline: ModelRef
    candidate: ModelRef
    reused: bool  # every step was a cache hit
    optimize_wall_s: float
    steps: tuple[dict[str, Any], ...]  # per recipe step: kind, digest, reused, what it measured
    note: str
    # the golden rows as the served models receive them (chats rendered with the base tokenizer),
    # in the order of PreflightResult.golden
    prompts: tuple[str, ...] = ()
    source_note: str = ""

    def served_prompts(self, golden: tuple[GoldenPrompt, ...]) -> tuple[str, ...]:
        """What the served models receive for ``golden``: the rendered rows (the display text when
        this result was built without them)."""
        return self.prompts or tuple(g.row.display for g in golden)


# build
@dataclasses.dataclass(frozen=True)
class BuildResult:
    baseline: EngineBuild
    candidate: EngineBuild
    note: str


# deploy
@dataclasses.dataclass(frozen=True)
class DeployResult:
    url: str  # host:port of Triton's HTTP endpoint
    grpc_url: str  # host:port of its gRPC endpoint
    models: dict[str, str]  # arm -> Triton model name
    server: TritonServer | None  # when local (to check it is alive)
    note: str

    def check_alive(self) -> None:
        if self.server is not None:
            self.server.check_alive()


# load
@dataclasses.dataclass(frozen=True)
class LoadResult:
    baseline: ArmLoad
    candidate: ArmLoad
    generator: GeneratorSummary  # the worker's summary.json
    records_path: Path
    server: dict[str, ModelWindow] | None  # per arm, from Triton's metrics (local server only)
    generator_problem: str | None  # why the load generator, not the server, was the bottleneck
    server_memory: dict[str, float] | None  # Triton's memory gauges at the end of the window
    note: str
    stopped: Stopped  # why and when the load stopped
    capacity: Capacity | None = None  # from load.sweep, when configured

    latency_point: PointLoad | None = None  # load.operating_points' `latency` window, when measured apart
    output_pairs: tuple[tuple[int, int], ...] = ()  # (baseline, candidate) output tokens per measured pair
    # load.workload's request classes (gates/loadgen/classes.py) and the samples of gates scoped by `where`
    classes: tuple[ClassFigures, ...] = ()
    class_series: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = dataclasses.field(default_factory=dict)

    def capacity_tokens_per_s(self, arm: str) -> float | None:
        return capacity_tokens_per_s(self.server, self.baseline if arm == "baseline" else self.candidate, arm)


@dataclasses.dataclass(frozen=True)
class PointLoad:
    """One operating point's paired window (the throughput point's figures are LoadResult's own)."""

    name: str  # an OperatingPoint value
    concurrency: int | None  # requests in flight per arm at most (closed loop), or None (open loop)
    rate: float | None  # requests per second per arm (open loop)
    baseline: ArmLoad
    candidate: ArmLoad
    server: dict[str, ModelWindow] | None
    records_path: Path
    stopped: Stopped
    generator: GeneratorSummary | None = None  # this window's worker summary (its own self-check)
    generator_problem: str | None = None  # why this window's load generator, not the server, was the bottleneck
    output_pairs: tuple[tuple[int, int], ...] = ()  # (baseline, candidate) output tokens per measured pair
    classes: tuple[ClassFigures, ...] = ()
    class_series: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = dataclasses.field(default_factory=dict)

    def capacity_tokens_per_s(self, arm: str) -> float | None:
        return capacity_tokens_per_s(self.server, self.baseline if arm == "baseline" else self.candidate, arm)


def capacity_tokens_per_s(server: dict[str, ModelWindow] | None, load: ArmLoad, arm: str) -> float | None:
    """Output tokens per second of model busy time: what one instance of the arm sustains at this load.

    Arms are interleaved in pairs, so both get the same request rate whatever their speed; their
    client-side throughput cannot be compared, their busy time can. With the engine's scheduler
    the busy time is the time inside its steps (batched: every sequence of a step counts), else
    Triton's compute time of one-at-a-time requests."""
    window = (server or {}).get(arm)
    if window is None:
        return None
    if window.engine_busy_s is not None and window.engine_tokens:
        return window.engine_tokens / window.engine_busy_s if window.engine_busy_s > 0 else None
    if window.compute_s <= 0 or window.success <= 0:
        return None
    tokens_per_request = load.output_tokens_per_s * load.window_s / max(load.requests - load.errors, 1)
    return tokens_per_request * window.success / window.compute_s


# drift
@dataclasses.dataclass(frozen=True)
class DriftResult:
    summary: DriftSummary
    rows: tuple[PromptDrift, ...]
    path: Path
    note: str
    batched: dict[str, BatchedAgreement] | None = None  # per arm: batched answers against one at a time


# quality
@dataclasses.dataclass(frozen=True)
class QualityResult:
    choices: dict[str, tuple[ChoiceScore, ...]]  # arm -> per item, in PreflightResult.choices order
    documents: dict[str, tuple[DocumentScore, ...]]  # arm -> per document
    path: Path | None
    note: str
    lm_eval: dict[str, tuple[TaskSamples, ...]] = dataclasses.field(default_factory=dict)  # arm -> per task
    corpus: CorpusRun | None = None  # golden.drift_corpus: token-level drift on windows (issue 29)

    def bits_per_byte(self, arm: str) -> float:
        docs = self.documents.get(arm, ())
        nbytes = sum(d.bytes for d in docs)
        return sum(d.nll for d in docs) / math.log(2) / nbytes if nbytes else math.nan


# quality verdicts (judge stage)
@dataclasses.dataclass(frozen=True)
class QualityVerdicts:
    entries: tuple[QualityEntry, ...]


# report
@dataclasses.dataclass(frozen=True)
class ReportResult:
    json: Path
    markdown: Path
    html: Path
    note: str


# publish
@dataclasses.dataclass(frozen=True)
class PublishResult:
    posted: bool
    url: str | None
    note: str


@dataclasses.dataclass
class RunRecord:
    """What one run measured and decided, stage by stage; ``None`` where a stage did not run.

    Each field is set once (:meth:`put`) to a frozen result, so no stage can change what another
    measured; ``error`` says why the measurement stages stopped, when they did.
    """

    preflight: PreflightResult | None = None
    optimize: OptimizeResult | None = None
    build: BuildResult | None = None
    deploy: DeployResult | None = None
    load: LoadResult | None = None
    drift: DriftResult | None = None
    quality: QualityResult | None = None
    quality_verdicts: QualityVerdicts | None = None
    judge: Verdict | None = None
    report: ReportResult | None = None
    publish: PublishResult | None = None
    error: str | None = None

    def put(self, result: Any) -> None:
        name = FIELD_OF[type(result)]
        if getattr(self, name) is not None:
            raise RuntimeError(f"result {name!r} already recorded")
        setattr(self, name, result)

    def need(self, kind: type[T]) -> T:
        value = getattr(self, FIELD_OF[kind])
        if not isinstance(value, kind):
            raise RuntimeError(f"stage result {FIELD_OF[kind]!r} is missing: a stage ran out of order")
        return value

    def get(self, kind: type[T]) -> T | None:
        value = getattr(self, FIELD_OF[kind])
        return value if isinstance(value, kind) else None


# Which field of the record holds each result type (one type, one field).
FIELD_OF: dict[type, str] = {
    PreflightResult: "preflight",
    OptimizeResult: "optimize",
    BuildResult: "build",
    DeployResult: "deploy",
    LoadResult: "load",
    DriftResult: "drift",
    QualityResult: "quality",
    QualityVerdicts: "quality_verdicts",
    Verdict: "judge",
    ReportResult: "report",
    PublishResult: "publish",
}
