"""The pipeline schema: what a PR author writes in ``pipelines/<name>.yaml``.

Every model forbids unknown keys (a typo must not silently fall back to a default) and is
frozen (stages read the config, never change it).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from gates.config.engine import EngineSection, ServeSection
from gates.config.golden import GoldenSection
from gates.config.goodput import GoodputTier, check_tiers, default_tiers
from gates.config.load_modes import Arrivals, CapacitySearchSection, SweepSection, check_modes, check_search
from gates.config.promotion import PromotionSection
from gates.config.search import SearchSection
from gates.config.strict import Strict
from gates.config.workload import WorkloadSection, check_where, check_workloads, series_key
from gates.loadmodes import LoadMode, OperatingPoint

# Our names for Model Optimizer's predefined configs (gates formats prints the mapping).
QuantFormat = Literal[
    "none",
    "int8_sq",
    "int8",
    "int8_wo",
    "fp8",
    "fp8_pcpt",
    "fp8_pb_wo",
    "int4_awq",
    "int4_wo",
    "w4a8_awq",
    "nvfp4",
    "nvfp4_awq",
    "w4a16_nvfp4",
    "w4a8_nvfp4_fp8",
    "mxfp8",
    "mxfp4",
    "mxint8",
    "w4a8_mxfp4_fp8",
]
QUANT_FORMATS: tuple[str, ...] = QuantFormat.__args__  # type: ignore[attr-defined]

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")  # used with fullmatch: "$" would accept a trailing newline
PIPELINE_NAME = _NAME  # what `gates publish` accepts as report.json's pipeline


BUILTIN_MODELS = ("builtin:tiny-llama", "builtin:smollm2-135m-instruct")


class ModelSection(Strict):
    source: str = Field(
        description="a builtin model, a local Hugging Face checkpoint folder or a .gguf file", max_length=4096
    )

    @field_validator("source")
    @classmethod
    def _source(cls, v: str) -> str:
        if v.startswith("builtin:") and v not in BUILTIN_MODELS:
            raise ValueError(f"unknown builtin model {v!r}; builtins: {', '.join(BUILTIN_MODELS)}")
        if "://" in v or v.startswith("hf:"):
            raise ValueError("model.source must be a local checkpoint directory (no model hub access)")
        return v


class QuantizerOverride(Strict):
    """One entry of Model Optimizer's ``quant_cfg``, keyed by a quantizer name pattern."""

    enable: bool | None = None
    num_bits: int | tuple[int, int] | None = None
    axis: int | None = None
    block_sizes: dict[str, Any] | None = None

    @field_validator("num_bits")
    @classmethod
    def _bits(cls, v: int | tuple[int, int] | None) -> int | tuple[int, int] | None:
        if isinstance(v, int) and not 2 <= v <= 16:
            raise ValueError("num_bits must be between 2 and 16")
        return v

    @field_validator("num_bits", mode="before")
    @classmethod
    def _pair(cls, v: Any) -> Any:
        return tuple(v) if isinstance(v, list) else v  # YAML has lists only; strict mode wants the tuple


class QuantizeSection(Strict):
    format: QuantFormat
    calibration: str | None = None
    samples: int = Field(default=64, ge=1, le=100_000)
    batch_size: int = Field(default=1, ge=1, le=1024)
    max_length: int = Field(default=128, ge=8, le=65_536)
    kv_cache: Literal["none", "fp8", "nvfp4"] = "none"
    exclude: list[str] = Field(default_factory=lambda: ["*lm_head*"])
    quant_cfg: dict[str, QuantizerOverride] = Field(default_factory=dict)

    def data_files(self) -> tuple[str, ...]:
        return (self.calibration,) if self.calibration else ()

    @model_validator(mode="after")
    def _needs_calibration(self) -> QuantizeSection:
        if self.format != "none" and self.calibration is None:
            raise ValueError(f"format {self.format!r} needs a calibration JSONL (optimize.quantize.calibration)")
        return self


class PruneSection(Strict):
    """Structured MLP-width pruning (see gates/optimize/prune.py)."""

    ffn_ratio: float = Field(gt=0, le=1)  # share of MLP channels kept in every layer
    calibration: str  # JSONL rows {"id", "text"}: importance is measured on it
    samples: int = Field(default=64, ge=1)
    max_length: int = Field(default=128, ge=8)

    def data_files(self) -> tuple[str, ...]:
        return (self.calibration,)


class DistillSection(Strict):
    """Logits knowledge distillation from the base model (the teacher) into the student."""

    data: str  # JSONL rows {"id", "text"}, checked with Great Expectations
    steps: int = Field(default=200, ge=1, le=1_000_000)
    lr: float = Field(default=1e-4, gt=0, lt=1)
    temperature: float = Field(default=2.0, gt=0)
    alpha: float = Field(default=1.0, ge=0, le=1)  # weight of the KD loss; 1 - alpha goes to the LM loss
    batch_size: int = Field(default=4, ge=1)
    max_length: int = Field(default=64, ge=8)
    seed: int = 0

    def data_files(self) -> tuple[str, ...]:
        return (self.data,)


class OptimizeSection(Strict):
    """Recipes run in this order when present: prune -> distill -> quantize."""

    prune: PruneSection | None = None
    distill: DistillSection | None = None
    quantize: QuantizeSection | None = None

    def data_files(self) -> tuple[str, ...]:
        """The data files the recipes read (each section names its own), in the order they run."""
        return tuple(f for s in (self.prune, self.distill, self.quantize) if s is not None for f in s.data_files())


class SloSection(Strict):
    """Service-level objectives per request; goodput counts the requests meeting all of them."""

    latency_ms: float | None = Field(default=None, gt=0)
    ttft_ms: float | None = Field(default=None, gt=0)
    itl_ms: float | None = Field(default=None, gt=0)

    def limits(self) -> dict[str, float]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class LoadSection(Strict):
    users: int = Field(default=4, ge=1, le=10_000)
    duration_s: float = Field(default=20.0, gt=0, le=86_400)
    # past duration_s, the load goes on until each arm has gates.min_requests successful
    # requests or this many seconds have passed (null: stop at duration_s)
    max_duration_s: float | None = Field(default=None, gt=0, le=86_400)
    warmup_s: float = Field(default=2.0, ge=0)
    spawn_rate: float | None = Field(default=None, gt=0)
    max_new_tokens: int = Field(default=16, ge=1, le=4096)
    timeout_s: float = Field(default=30.0, gt=0)
    max_new_tokens_max: int | None = Field(default=None, ge=1, le=4096)  # output lengths uniform in [min, max]
    # golden: the golden prompts as written; peak_context: each padded to the model's maximum
    # context minus max_new_tokens (the tail latency that matters at peak length)
    profile: Literal["golden", "peak_context"] = "golden"
    # a request mix instead of one profile: relative weights, e.g. {golden: 0.8, peak_context: 0.2}
    mix: dict[Literal["golden", "peak_context"], float] | None = None
    # load modes (gates/loadmodes/): closed loop of `users`, or open loop at `rate`
    # requests/s per arm; a sweep of steps after the main window gives the capacity at the SLO.
    # Not strict: YAML gives the mode's name as a string, an enum member is only ever built here
    mode: LoadMode = Field(default=LoadMode.closed, strict=False)
    rate: float | None = Field(default=None, gt=0, le=10_000)
    arrivals: Arrivals = "poisson"
    sweep: SweepSection | None = None
    # capacity by search instead of a fixed sweep: the highest rate meeting the SLO per arm, with an interval
    capacity_search: CapacitySearchSection | None = None
    # realistic paired requests instead of the prompt mix (gates/workloads/, docs/workloads.md):
    # a trace replay, shared-prefix groups, multi-turn conversations or length distributions
    # (a list mixes them in one window: a trace at its own times, the others at load.rate)
    workload: WorkloadSection | list[WorkloadSection] | None = None
    trace_speed: float = Field(default=1.0, gt=0, le=1000)  # a trace's times divided by this (2.0: twice as fast)
    # each point is its own paired window, judged by the latency and cost gates: `latency` (one
    # request in flight per arm) before `throughput` (the users or rate above); with a closed loop of
    # one user the two are the same window, measured once
    operating_points: list[Annotated[OperatingPoint, Field(strict=False)]] = Field(
        default_factory=lambda: [OperatingPoint.latency, OperatingPoint.throughput], min_length=1
    )

    # adaptive stopping (gates/judge/adaptive.py): from min_duration_s (default duration_s) the
    # latency decision is looked at every look_interval_s and the load stops once it is settled,
    # at max_duration_s (required) at the latest; pass_error bounds the chance of an early PASS
    # when the true effect sits exactly at its limit, and when it is the effect the full load
    # detects with power 1 - pass_error (the futility rule)
    adaptive: bool = False
    min_duration_s: float | None = Field(default=None, gt=0, le=86_400)
    look_interval_s: float = Field(default=5.0, gt=0, le=3_600)
    pass_error: float = Field(default=0.05, gt=0, lt=0.5)

    @model_validator(mode="after")
    def _adaptive(self) -> LoadSection:
        if self.adaptive and self.max_duration_s is None:
            raise ValueError("load.adaptive needs load.max_duration_s (the planned maximum the error is spent over)")
        first = self.first_look_s
        if self.min_duration_s is not None and not self.adaptive:
            raise ValueError("load.min_duration_s applies only with load.adaptive: true")
        if self.adaptive and (first <= self.warmup_s or first > (self.max_duration_s or 0)):
            raise ValueError("load.min_duration_s must lie after load.warmup_s and not after load.max_duration_s")
        return self

    @property
    def first_look_s(self) -> float:
        return self.min_duration_s if self.min_duration_s is not None else self.duration_s

    @model_validator(mode="after")
    def _lengths(self) -> LoadSection:
        check_search(self.mode, self.capacity_search, self.sweep, self.slo.limits())
        check_tiers(self.goodput_tiers)
        timed = check_workloads(self.workloads, self.mode, self.rate, self.sweep is not None, self.mix, self.profile)
        check_modes(self.mode, self.rate, self.sweep, self.slo.limits(), timed and self.rate is None)
        if self.generator_processes > 1 and (self.adaptive or self.workloads):
            raise ValueError(
                "load.generator_processes > 1 runs the golden prompt mix with the fixed stopping rule only"
            )
        if self.max_new_tokens_max is not None and self.max_new_tokens_max < self.max_new_tokens:
            raise ValueError("load.max_new_tokens_max must be at least load.max_new_tokens")
        if self.mix is not None and (not self.mix or any(w <= 0 for w in self.mix.values())):
            raise ValueError("load.mix weights must be positive")
        if self.max_duration_s is not None and self.max_duration_s < self.duration_s:
            raise ValueError("load.max_duration_s must be at least load.duration_s")
        if len(set(self.operating_points)) != len(self.operating_points):
            raise ValueError("load.operating_points lists a point twice")
        if self.warmup_s >= self.duration_s:
            raise ValueError("load.warmup_s must be shorter than load.duration_s (nothing would be measured)")
        return self

    @property
    def workloads(self) -> list[WorkloadSection]:
        """``load.workload`` as a list (empty: the golden prompt mix)."""
        w = self.workload
        return [] if w is None else (list(w) if isinstance(w, list) else [w])

    def weights(self) -> dict[str, float]:
        return {str(k): v for k, v in self.mix.items()} if self.mix else {self.profile: 1.0}

    slo: SloSection = Field(default_factory=SloSection)
    goodput_tiers: list[GoodputTier] = Field(default_factory=default_tiers, max_length=16)  # config/goodput.py
    # generator self-check: above either, the client was the bottleneck and the run is inconclusive
    generator_max_cpu: float = Field(default=0.90, gt=0, le=1)
    generator_max_lag_ms: float = Field(default=20.0, gt=0)
    # locust worker processes under one master (locust's distributed mode) when one process cannot
    # carry the load (the self-check says so); closed or open loop without adaptive stopping or a workload
    generator_processes: int = Field(default=1, ge=1, le=64)


class MetricSpec(Strict):
    """A per-request metric compared between arms with Mann-Whitney U and a Hodges-Lehmann shift.

    ``direction`` says which change is bad: ``increase`` (latency), ``decrease`` (throughput) or
    ``either``. ``allowed_effect`` is the relative shift tolerated (0.05 = 5%).
    """

    name: Literal["latency_ms", "ttft_ms", "itl_ms", "output_tokens_per_s"]
    direction: Literal["increase", "decrease", "either"]
    allowed_effect: float = Field(default=0.05, ge=0, le=10)
    critical: bool = False
    must_have_data: bool = True
    group: str = "performance"
    remove_outliers: bool = True
    # scope to a request class of load.workload (gates/workloads/classes.py): {turn: ">1"} judges
    # the turns after the first only; {input: "513-2048"} one input-length bucket
    where: dict[str, str] | None = None

    _where = field_validator("where")(check_where)

    @property
    def series_key(self) -> str:
        """The evidence series this gate reads: the metric, or ``ttft_ms[turn>1]`` for a class."""
        return series_key(self.name, self.where)


def _default_metrics() -> list[MetricSpec]:
    return [
        MetricSpec(name="latency_ms", direction="increase", allowed_effect=0.05, critical=True),
        MetricSpec(name="output_tokens_per_s", direction="decrease", allowed_effect=0.05),
    ]


class ScoreSection(Strict):
    """Kayenta-style score thresholds over the metric groups (0-100)."""

    pass_: float = Field(default=95.0, ge=0, le=100, alias="pass")
    marginal: float = Field(default=75.0, ge=0, le=100)

    @model_validator(mode="after")
    def _order(self) -> ScoreSection:
        if self.marginal > self.pass_:
            raise ValueError("score.marginal must not exceed score.pass")
        return self


class CostSection(Strict):
    """Cost per token from the accelerator price and each arm's measured output tokens/s."""

    usd_per_hour: float = Field(gt=0)
    min_saving: float | None = Field(default=None, ge=-1, le=1)  # 0.2 = candidate must be ≥20% cheaper


class GatesSection(Strict):
    """Thresholds. A gate whose threshold is null is not applied (and the report says so)."""

    latency_p95_ratio_max: float | None = Field(default=1.10, gt=0)
    latency_p99_ratio_max: float | None = Field(
        default=None, gt=0
    )  # the p99 too (certified on ≥ 1,000 requests per arm)
    error_rate_max: float = Field(default=0.001, ge=0, le=1)
    top1_agreement_min: float | None = Field(default=0.95, ge=0, le=1)
    exact_match_rate_min: float | None = Field(default=0.80, ge=0, le=1)
    mean_kl_max: float | None = Field(default=None, ge=0)
    min_requests: int = Field(default=30, ge=1)
    # the candidate's output tokens per golden prompt over the baseline's (paired, with an interval)
    # must stay within 1 ± this band: a terser candidate cannot look faster or cheaper
    output_tokens_ratio_band: float = Field(default=0.10, gt=0, lt=1)
    confidence: float = Field(default=0.99, gt=0.5, lt=1)  # of every interval and test in the judge
    metrics: list[MetricSpec] = Field(default_factory=_default_metrics)
    groups: dict[str, float] = Field(default_factory=lambda: {"performance": 1.0})
    score: ScoreSection = Field(default_factory=ScoreSection)
    cost: CostSection | None = None
    # quality verdicts with statistics (gates/judge/quality.py): null thresholds are not applied
    accuracy_drop_max: float | None = Field(default=None, ge=0, le=1)  # non-inferiority margin
    recovery_min: float | None = Field(default=None, ge=0, le=2)  # candidate/baseline accuracy
    perplexity_increase_max: float | None = Field(default=None, ge=0)  # relative: 0.05 = +5%
    drift_intervals: bool = False  # judge the drift thresholds on bootstrap intervals over prompts
    power: float = Field(default=0.8, gt=0, lt=1)  # for the detectable effect the report states
    # capacity at the SLO (needs load.sweep): candidate/baseline highest rate within the SLO, and
    # the relative increase of the cost per 1M output tokens at that rate (0.0: no dearer)
    capacity_gain_min: float | None = Field(default=None, gt=0)
    cost_at_slo_increase_max: float | None = Field(default=None, ge=-1)
    # corpus drift (golden.drift_corpus), judged on intervals by document; applied only when a
    # corpus is configured (null: not applied)
    corpus_kl_mean_max: float | None = Field(default=0.05, ge=0)
    corpus_kl_p99_max: float | None = Field(default=1.0, ge=0)
    corpus_same_top1_min: float | None = Field(default=0.90, ge=0, le=1)
    corpus_ppl_ratio_max: float | None = Field(default=1.05, gt=0)

    @model_validator(mode="after")
    def _groups(self) -> GatesSection:
        for m in self.metrics:
            if m.group not in self.groups:
                raise ValueError(f"metric {m.name!r} is in group {m.group!r}, which gates.groups does not weight")
        if any(w <= 0 for w in self.groups.values()):
            raise ValueError("gates.groups weights must be positive")
        return self


class Pipeline(Strict):
    name: str
    description: str | None = None
    model: ModelSection
    optimize: OptimizeSection = Field(default_factory=OptimizeSection)
    engine: EngineSection = Field(default_factory=EngineSection)
    serve: ServeSection = Field(default_factory=ServeSection)
    load: LoadSection = Field(default_factory=LoadSection)
    golden: GoldenSection
    gates: GatesSection = Field(default_factory=GatesSection)
    promotion: PromotionSection = Field(default_factory=PromotionSection)
    search: SearchSection | None = None  # what `gates search` tries (gates/search/); `gates run` ignores it

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.fullmatch(v):
            raise ValueError("name must be lowercase letters, digits, '.', '_' or '-' (at most 63)")
        return v

    def data_files(self) -> tuple[str, ...]:
        """Every data file the pipeline names (golden suites and quality data, recipe data), as written."""
        g = self.golden
        return (*g.suites, *g.multiple_choice, *g.perplexity, *g.lm_eval, *g.drift_corpus, *self.optimize.data_files())

    @property
    def quant_format(self) -> str:
        q = self.optimize.quantize
        return q.format if q is not None else "none"
