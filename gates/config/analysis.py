"""The ``promotion.analysis:`` section: the analysis window judged at every canary step.

Every limit left out (null) is the pipeline's own ``gates:`` value, so the canary is judged on
live traffic by the same rules that passed it on the PR; the p99, which the PR gate judges only
when configured, defaults to :data:`P99_RATIO_DEFAULT` here (live traffic is where a tail shows).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field

from gates.config.strict import Strict

P99_RATIO_DEFAULT = 1.15


class ProviderKind(StrEnum):
    PROXY = "proxy"  # the local proxy's per-request log (HAProxy)
    PROMETHEUS = "prometheus"  # PromQL over Triton's metrics (KServe)


class TrafficMode(StrEnum):
    LIVE = "live"  # judge what users sent through the target
    SYNTHETIC = "synthetic"  # drive a paired open-loop load through the target during each window


class AnalysisMetric(Strict):
    """A per-request metric of both arms compared by Mann-Whitney + Hodges-Lehmann (the PR gate's test)."""

    # itl_ms: needs the served models' request logs (a canary gates serves itself)
    name: Literal["latency_ms", "ttft_ms", "itl_ms"]
    allowed_effect: float = Field(default=0.05, ge=0, le=10)


class PrometheusSection(Strict):
    url: str | None = None  # http://prometheus:9090; required with provider: prometheus
    # PromQL per figure; {model} and {window} are filled in (see providers/prometheus.py for the defaults)
    queries: dict[str, str] = Field(default_factory=dict)


class AnalysisSection(Strict):
    interval_s: float = Field(default=30.0, gt=0)  # one analysis window
    min_requests: int = Field(default=100, ge=2)  # per arm and window; fewer: NODATA, the step holds
    max_windows: int = Field(default=6, ge=1)  # per step: the group-sequential test's planned maximum
    pass_error: float = Field(default=0.05, gt=0, lt=1)  # chance of an early PASS at the limit (adaptive.py)
    metrics: list[AnalysisMetric] | None = None  # None: the pipeline's latency_ms (and ttft_ms) allowances
    latency_p95_ratio_max: float | None = Field(default=None, gt=0)
    latency_p99_ratio_max: float | None = Field(default=None, gt=0)
    error_rate_max: float | None = Field(default=None, ge=0, le=1)
    top1_agreement_min: float | None = Field(default=None, ge=0, le=1)
    confidence: float | None = Field(default=None, gt=0.5, lt=1)
    provider: ProviderKind = Field(default=ProviderKind.PROXY, strict=False)  # YAML gives the value as text
    prometheus: PrometheusSection = Field(default_factory=PrometheusSection)
    traffic: TrafficMode = Field(default=TrafficMode.LIVE, strict=False)
    synthetic_rate_per_s: float = Field(default=10.0, gt=0)  # request pairs per second (one per arm)
    max_new_tokens: int = Field(default=8, ge=1)  # of synthetic requests and drift prompts
    drift_prompts: int = Field(default=4, ge=0)  # golden prompts: stable's continuation scored by the canary
