"""The ``prometheus`` provider: PromQL over Triton's metrics, per model (or revision on KServe).

Triton exports counters per model (``nv_inference_request_success``, ``…_failure``,
``…_request_duration_us``); a window is each counter's value at its end minus its value at its
start (two instant queries, no extrapolation, so the counts are exact once both ends were
scraped). A counter that went *down* means the model was restarted or reloaded within the window:
that is no data (the figures restart), said as such. Per-request samples exist only where a
histogram query is configured (``latency_histogram``: ``sum by (le) (…_bucket{…})`` over the
window, expanded to one value per request at each bucket's geometric midpoint); without one the
shift tests have no data and the step holds: Prometheus alone judges errors and server failures.

Queries are PromQL with ``{model}`` (the arm's Triton model: ``CanaryState.stable`` /
``.canary``) and ``{arm}`` (stable | canary, for selectors that tell KServe revisions apart) and,
in ``latency_histogram``, ``{window}`` (seconds, e.g. ``30s``); ``promotion.analysis.prometheus.
queries`` overrides any of them.
"""

from __future__ import annotations

import json
import math
import urllib.parse
import urllib.request
from typing import Any

from gates.config.analysis import AnalysisSection
from gates.errors import BadInputError, InfraError
from gates.ledger import CanaryState
from gates.promotion.analysis.records import ArmSamples, WindowData

DEFAULT_QUERIES = {
    "success": 'sum(nv_inference_request_success{{model="{model}"}})',
    "failure": 'sum(nv_inference_request_failure{{model="{model}"}})',
    "duration_us": 'sum(nv_inference_request_duration_us{{model="{model}"}})',
    "latency_histogram": "",  # e.g. sum by (le) (increase(my_latency_ms_bucket{{model="{model}"}}[{window}]))
}


def query(base: str, promql: str, at: float) -> list[dict[str, Any]]:
    """An instant query at time ``at``; its result vector (InfraError when Prometheus does not answer)."""
    url = f"{base.rstrip('/')}/api/v1/query?" + urllib.parse.urlencode({"query": promql, "time": f"{at:.3f}"})
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.loads(r.read())
    except (OSError, ValueError) as exc:
        raise InfraError(f"Prometheus at {base} did not answer {promql!r}: {exc}") from exc
    if body.get("status") != "success":
        raise InfraError(f"Prometheus refused {promql!r}: {body.get('error', body)}")
    return list(body["data"]["result"])


def scalar(base: str, promql: str, at: float) -> float | None:
    result = query(base, promql, at)
    return float(result[0]["value"][1]) if result else None


def histogram_samples(result: list[dict[str, Any]]) -> tuple[float, ...]:
    """Per-request values from cumulative buckets: each bucket's count at its geometric midpoint."""
    buckets = sorted(
        (float(r["metric"].get("le", "+Inf")), float(r["value"][1])) for r in result if "le" in r.get("metric", {})
    )
    out: list[float] = []
    lower, seen = 0.0, 0.0
    for upper, cumulative in buckets:
        count = max(round(cumulative - seen), 0)
        if math.isinf(upper):
            value = lower * 1.5 if lower > 0 else math.nan  # beyond the last bound: a guess, said in the docs
        else:
            value = math.sqrt(lower * upper) if lower > 0 else upper / 2
        if count and math.isfinite(value):
            out += [value] * count
        lower, seen = (upper if math.isfinite(upper) else lower), max(seen, cumulative)
    return tuple(out)


class PrometheusProvider:
    def window(self, canary: CanaryState, cfg: AnalysisSection, start: float, end: float) -> WindowData:
        base = cfg.prometheus.url
        if not base:
            raise BadInputError(
                "promotion.analysis.provider is prometheus but promotion.analysis.prometheus.url is unset"
            )
        queries = {**DEFAULT_QUERIES, **cfg.prometheus.queries}
        arms = {}
        for arm, model in (("stable", canary.stable), ("canary", canary.canary)):
            if not model:
                raise InfraError(f"pipeline {canary.pipeline!r}: no {arm} model name recorded for Prometheus queries")
            arms[arm] = self._arm(base, queries, model, arm, start, end)
        return WindowData(start, end, arms["stable"], arms["canary"], "prometheus")

    def _arm(self, base: str, queries: dict[str, str], model: str, arm: str, start: float, end: float) -> ArmSamples:
        window = f"{max(round(end - start), 1)}s"
        delta: dict[str, float] = {}
        for key in ("success", "failure"):
            promql = queries[key].format(model=model, arm=arm, window=window)
            before, after = scalar(base, promql, start), scalar(base, promql, end)
            if after is None:
                raise InfraError(f"Prometheus has no {key} series for model {model!r} ({promql})")
            if before is not None and after < before:
                raise InfraError(f"model {model!r} was restarted or reloaded during the window ({key} counter reset)")
            delta[key] = after - (before or 0.0)
        latency: tuple[float, ...] = ()
        if queries.get("latency_histogram"):
            promql = queries["latency_histogram"].format(model=model, arm=arm, window=window)
            latency = histogram_samples(query(base, promql, end))
        requests = round(delta["success"] + delta["failure"])
        errors = round(delta["failure"])
        return ArmSamples(requests, errors, 0, latency, (), server_failures=delta["failure"])
