"""Per-arm load statistics from the per-request records."""

from __future__ import annotations

import csv
import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gates.config.goodput import GoodputTier
from gates.loadgen.goodput import TierGoodput, tier_goodput


@dataclasses.dataclass(frozen=True)
class ArmLoad:
    requests: int
    errors: int
    window_s: float
    latency_ms: dict[str, float]  # end-to-end: p50 / p95 / p99 / mean of successful requests
    ttft_ms: dict[str, float]  # time to first token (GenAI-Perf's definition)
    itl_ms: dict[str, float]  # inter-token latency: (last token - first token) / (tokens - 1)
    rps: float
    output_tokens_per_s: float
    goodput_rps: float | None  # successful requests per second meeting every SLO (None: no SLO configured)
    error_rate: float
    samples_ms: tuple[float, ...]  # successful latencies, for the judge's statistics
    tokens_per_s_samples: tuple[float, ...]  # per successful request: output tokens / latency
    ttft_samples_ms: tuple[float, ...]
    first_errors: tuple[str, ...]
    itl_samples_ms: tuple[float, ...] = ()
    goodput_tiers: tuple[TierGoodput, ...] = ()  # per load.goodput_tiers (loadgen/goodput.py)

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for key in ("samples_ms", "tokens_per_s_samples", "ttft_samples_ms", "itl_samples_ms"):
            d.pop(key)
        d["first_errors"] = list(self.first_errors)
        d["goodput_tiers"] = [dataclasses.asdict(t) for t in self.goodput_tiers]  # a list, as JSON has
        return d


def _float(value: str | None) -> float:
    return float(value) if value not in (None, "") else math.nan


def read_records(path: Path) -> list[dict[str, Any]]:
    with path.open(newline="") as f:
        return [
            {
                **r,
                "t_start_s": float(r["t_start_s"]),
                "latency_ms": float(r["latency_ms"]),
                "ttft_ms": _float(r.get("ttft_ms")),
                "itl_ms": _float(r.get("itl_ms")),
                "ok": r["ok"] == "1",
                "output_tokens": int(r["output_tokens"]),
                "pair": r.get("pair") or "",
                "labels": r.get("labels") or "",
            }
            for r in csv.DictReader(f)
        ]


def percentiles(values: list[float]) -> dict[str, float]:
    arr = np.array([v for v in values if math.isfinite(v)], dtype=float)
    if not arr.size:
        return {"p50": math.nan, "p95": math.nan, "p99": math.nan, "mean": math.nan}
    return {
        "p50": float(np.percentile(arr, 50)),
        "p95": float(np.percentile(arr, 95)),
        "p99": float(np.percentile(arr, 99)),
        "mean": float(arr.mean()),
    }


def summarize(
    records: list[dict[str, Any]],
    arm: str,
    warmup_s: float,
    duration_s: float,
    slo: dict[str, float] | None = None,
    tiers: Sequence[GoodputTier] = (),
) -> ArmLoad:
    """Statistics of one arm over the measured window ``[warmup_s, duration_s)``.

    Requests *started* during warm-up are dropped. Throughput divides by the measured window,
    not by the span of the samples, so an arm that stalls is not flattered. ``slo`` maps record
    fields (``latency_ms``, ``ttft_ms``, ``itl_ms``) to limits for goodput; ``tiers``: goodput at
    each service tier (``load.goodput_tiers``).
    """
    window = max(duration_s - warmup_s, 1e-9)
    rows = [r for r in records if r["arm"] == arm and warmup_s <= r["t_start_s"] < duration_s]
    # the samples in arrival order (records are written as requests finish): the judge reads the
    # warm-up and the correlation of neighbouring requests off this order (gates/judge/steady.py)
    ok = sorted((r for r in rows if r["ok"]), key=lambda r: float(r["t_start_s"]))
    errors = len(rows) - len(ok)
    good = None
    if slo:
        good = sum(all(math.isfinite(r[k]) and r[k] <= limit for k, limit in slo.items()) for r in ok)
    return ArmLoad(
        requests=len(rows),
        errors=errors,
        window_s=window,
        latency_ms=percentiles([r["latency_ms"] for r in ok]),
        ttft_ms=percentiles([r["ttft_ms"] for r in ok]),
        itl_ms=percentiles([r["itl_ms"] for r in ok]),
        rps=len(ok) / window,
        output_tokens_per_s=sum(r["output_tokens"] for r in ok) / window,
        goodput_rps=good / window if good is not None else None,
        error_rate=errors / len(rows) if rows else math.nan,
        samples_ms=tuple(float(r["latency_ms"]) for r in ok),
        tokens_per_s_samples=tuple(r["output_tokens"] / (r["latency_ms"] / 1000) for r in ok if r["latency_ms"] > 0),
        ttft_samples_ms=tuple(r["ttft_ms"] for r in ok if math.isfinite(r["ttft_ms"])),
        first_errors=tuple(dict.fromkeys(r["error"] for r in rows if not r["ok"]))[:5],
        itl_samples_ms=tuple(r["itl_ms"] for r in ok if math.isfinite(r["itl_ms"])),
        goodput_tiers=tier_goodput(rows, window, tiers),
    )


def output_token_pairs(records: list[dict[str, Any]], warmup_s: float) -> tuple[tuple[int, int], ...]:
    """(baseline, candidate) output tokens of each pair whose two requests both succeeded after the warm-up."""
    by_pair: dict[str, dict[str, int]] = {}
    for r in records:
        if r["pair"] and r["ok"] and r["t_start_s"] >= warmup_s:
            by_pair.setdefault(r["pair"], {})[r["arm"]] = int(r["output_tokens"])
    return tuple((p["baseline"], p["candidate"]) for p in by_pair.values() if p.keys() == {"baseline", "candidate"})
