"""Per-arm load statistics from the per-request records."""

from __future__ import annotations

import csv
import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class ArmLoad:
    requests: int
    errors: int
    window_s: float
    latency_ms: dict[str, float]  # p50 / p95 / p99 / mean of successful requests
    rps: float
    output_tokens_per_s: float
    error_rate: float
    samples_ms: tuple[float, ...]  # successful latencies, for the judge's statistics
    tokens_per_s_samples: tuple[float, ...]  # per successful request: output tokens / latency
    first_errors: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("samples_ms")
        d.pop("tokens_per_s_samples")
        d["first_errors"] = list(self.first_errors)
        return d


def read_records(path: Path) -> list[dict[str, Any]]:
    with path.open(newline="") as f:
        return [
            {
                **r,
                "t_start_s": float(r["t_start_s"]),
                "latency_ms": float(r["latency_ms"]),
                "ok": r["ok"] == "1",
                "output_tokens": int(r["output_tokens"]),
            }
            for r in csv.DictReader(f)
        ]


def summarize(records: list[dict[str, Any]], arm: str, warmup_s: float, duration_s: float) -> ArmLoad:
    """Statistics of one arm over the measured window ``[warmup_s, duration_s)``.

    Requests *started* during warm-up are dropped. Throughput divides by the measured window,
    not by the span of the samples, so an arm that stalls is not flattered.
    """
    window = max(duration_s - warmup_s, 1e-9)
    rows = [r for r in records if r["arm"] == arm and warmup_s <= r["t_start_s"] < duration_s]
    ok = [r for r in rows if r["ok"]]
    errors = len(rows) - len(ok)
    lat = np.array([r["latency_ms"] for r in ok], dtype=float)
    nan = math.nan
    pct = {
        "p50": float(np.percentile(lat, 50)) if lat.size else nan,
        "p95": float(np.percentile(lat, 95)) if lat.size else nan,
        "p99": float(np.percentile(lat, 99)) if lat.size else nan,
        "mean": float(lat.mean()) if lat.size else nan,
    }
    return ArmLoad(
        requests=len(rows),
        errors=errors,
        window_s=window,
        latency_ms=pct,
        rps=len(ok) / window,
        output_tokens_per_s=sum(r["output_tokens"] for r in ok) / window,
        error_rate=errors / len(rows) if rows else nan,
        samples_ms=tuple(float(x) for x in lat),
        tokens_per_s_samples=tuple(r["output_tokens"] / (r["latency_ms"] / 1000) for r in ok if r["latency_ms"] > 0),
        first_errors=tuple(dict.fromkeys(r["error"] for r in rows if not r["ok"]))[:5],
    )
