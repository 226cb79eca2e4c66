"""report.json's load, cost and capacity sections (part of the typed model in gates/report/model.py)."""

from __future__ import annotations

from typing import Any, Literal

from gates.report.model_base import Measured, _Object, _Open


# -- load ------------------------------------------------------------------------------------------
class Percentiles(_Object):
    p50: Measured
    p95: Measured
    p99: Measured
    mean: Measured


class TierGoodput(_Object):
    """Goodput at one of ``load.goodput_tiers`` (gates/config/goodput.py)."""

    name: str
    ttft_ms: Measured
    tokens_per_s: Measured
    """Per-user decode speed bound: 1000 / ITL."""
    requests: int | None
    """Requests of the window meeting the tier; null when the arm's records lack the figures (no streaming)."""
    share: Measured
    """Of every request of the window, failed ones included."""
    goodput_rps: Measured


class ArmLoad(_Object):
    requests: int
    errors: int
    window_s: Measured
    latency_ms: Percentiles
    ttft_ms: Percentiles
    itl_ms: Percentiles
    rps: Measured
    output_tokens_per_s: Measured
    goodput_rps: Measured
    """Successful requests per second meeting every SLO; null without an SLO."""
    error_rate: Measured
    first_errors: list[str]
    batch_size_mean: Measured = None
    """Sequences per step of the arm's engine over the window (Triton's metrics of the served model)."""
    batch_size_max: int | None = None
    queue_ms_mean: Measured = None
    """Triton's queue time per request (the engine's own queue shows in ttft_ms)."""
    ms_per_output_token: Measured = None
    """Mean end-to-end latency over mean output tokens: latency per output token."""
    goodput_tiers: list[TierGoodput] = []
    """Goodput at each service tier of ``load.goodput_tiers`` (TTFT bound and per-user decode speed)."""


class OperatingPoint(_Object):
    """One paired window of ``load.operating_points`` and the gates judged on it."""

    name: Literal["latency", "throughput"]
    concurrency: int | None
    """Requests in flight per arm at most (closed loop); null for an open loop."""
    rate: Measured
    """Requests per second per arm (open loop); null for a closed loop."""
    baseline: ArmLoad
    candidate: ArmLoad
    gates: list[str]


class Look(_Object):
    n_baseline: int
    n_candidate: int
    fraction: Measured


class Stopped(_Open):
    """Why the load stopped; an adaptive load adds ``looks``, ``decision`` and ``detail``."""

    reason: str
    duration_s: Measured
    looks: list[Look] = []
    decision: str = ""
    detail: str = ""


class ServerWindow(_Object):
    """What Triton counted for one arm's model over the measured window."""

    success: Measured
    failure: Measured
    queue_ms_mean: Measured
    compute_ms_mean: Measured
    compute_s: Measured
    steps_by_size: dict[str, int] = {}
    """Engine steps by the number of sequences they ran (the served model's scheduler)."""
    engine_busy_s: Measured = None
    engine_tokens: Measured = None
    max_batch: int | None = None
    """Sequences the engine may run in one step (1: one request at a time)."""
    engine_healthy: bool | None = None
    """False once the engine's scheduler died or a step hung (the run is then INCONCLUSIVE)."""


class PerArm(_Object):
    baseline: Measured
    candidate: Measured


class ClassArm(_Object):
    requests: int
    errors: int
    latency_ms: Percentiles
    ttft_ms: Percentiles
    itl_ms: Percentiles


class RequestClass(_Object):
    """One class of ``load.workload``'s requests (an input-length bucket, a turn, a shared-prefix group)."""

    key: Literal["workload", "input", "turn", "group"]
    value: str
    arms: dict[Literal["baseline", "candidate"], ClassArm]


class Load(_Object):
    baseline: ArmLoad
    candidate: ArmLoad
    users: int
    duration_s: float
    stopped: Stopped
    warmup_s: float
    generator: dict[str, Any]
    """The load generator's own summary (open: its keys follow the generator)."""
    records: str
    """The per-request records (CSV) of both arms."""
    mode: str
    rate: float | None
    arrivals: str | None
    server: dict[str, ServerWindow] | None
    server_memory: dict[str, Measured] | None
    capacity_tokens_per_s: PerArm
    operating_points: list[OperatingPoint] = []
    workloads: list[Literal["trace", "shared_prefix", "multi_turn", "lengths"]] = []
    """``load.workload``'s kinds (docs/workloads.md); empty: the golden prompt mix."""
    classes: list[RequestClass] = []
    """Per-class figures of the throughput window, by label (input bucket, turn, group)."""


class Cost(_Object):
    usd_per_hour: float
    baseline_tokens_per_s: Measured
    candidate_tokens_per_s: Measured
    baseline_usd_per_mtok: Measured
    candidate_usd_per_mtok: Measured
    saving: Measured
    """0.25: the candidate is 25% cheaper per output token."""


class ArmCapacity(_Object):
    max_rate: Measured
    low: Measured
    high: Measured
    usd_per_1m_tokens: Measured
    throughput_rps: Measured
    output_tokens_per_s: Measured


class StepArm(_Object):
    rate: Measured
    """The rate this arm was offered at this step (the capacity search gives each arm its own)."""
    status: Literal["pass", "fail", "pass?", "fail?", "unusable"]
    reason: str
    requests: int
    rps: Measured
    output_tokens_per_s: Measured
    goodput_rps: Measured
    error_rate: Measured
    latency_ms: Percentiles
    ttft_ms: Percentiles
    itl_ms: Percentiles
    p95_interval: dict[str, tuple[Measured, Measured, Measured]]
    """Per SLO metric: [estimate, low, high] of the p95."""


class SweepStep(_Object):
    value: float
    generator_problem: str | None
    baseline: StepArm
    candidate: StepArm


class SearchArm(_Object):
    boundary: Measured
    low: Measured
    high: Measured
    cliff: str | None
    censored: Literal["above", "below"] | None
    rates: list[float]
    """This arm's rate at each probe, in the order they ran."""
    offered: list[float | None]
    """The rate that arrived at this arm in each probe's measured span (Poisson arrivals scatter
    around the nominal rate; the fitted line is on these), in the same order; null: none arrived."""


class CapacitySearch(_Object):
    metric: str
    limit_ms: float
    probes_per_arm: int
    per_arm: bool
    """Each arm probed at its own rate (a share of the same arrivals); false: one rate per window."""
    rates: list[float]
    """The probes' arrival rates (the highest arm's), in the order they ran."""
    baseline: SearchArm
    candidate: SearchArm
    gain_halfwidth: Measured
    """Half the gain's interval over the gain: 0.05 is ±5%."""
    arm_correlation: Measured
    """Of the two arms' residuals around their fitted lines in the same windows, as the gain's
    error used it (half a standard error below the estimate); null: no lines were fitted."""


class Capacity(_Object):
    slo: dict[str, float]
    over: str
    confidence: float
    baseline: ArmCapacity
    candidate: ArmCapacity
    gain: Measured
    gain_interval: tuple[Measured, Measured]
    steps: list[SweepStep]
    search: CapacitySearch | None = None
    """How load.capacity_search found the boundaries; null for a fixed sweep."""
