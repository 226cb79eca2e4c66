"""Triton's Prometheus metrics: per-model counters, snapshotted around the measured window."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

_LINE = re.compile(r"^(nv_[a-z_]+)\{([^}]*)\}\s+([0-9.eE+-]+)$")
_LABEL = re.compile(r'(\w+)="([^"]*)"')

# Counters summed per model (all versions).
COUNTERS = (
    "nv_inference_request_success",
    "nv_inference_request_failure",
    "nv_inference_count",
    "nv_inference_exec_count",
    "nv_inference_queue_duration_us",
    "nv_inference_compute_input_duration_us",
    "nv_inference_compute_infer_duration_us",
    "nv_inference_compute_output_duration_us",
)


GAUGES = (
    "nv_cpu_memory_used_bytes",
    "nv_cpu_memory_total_bytes",
    "nv_gpu_memory_used_bytes",
    "nv_gpu_memory_total_bytes",
)
_GAUGE = re.compile(r"^(nv_(?:cpu|gpu)_memory_(?:used|total)_bytes)(?:\{[^}]*\})?\s+([0-9.eE+-]+)$")


def memory(text: str) -> dict[str, float]:
    """Server-wide memory gauges (GPU ones summed over devices; absent without a GPU)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        m = _GAUGE.match(line.strip())
        if m:
            out[m.group(1)] = out.get(m.group(1), 0.0) + float(m.group(2))
    return out


def parse(text: str) -> dict[str, dict[str, float]]:
    """{model: {counter: value}} for the counters above."""
    out: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        m = _LINE.match(line.strip())
        if not m or m.group(1) not in COUNTERS:
            continue
        labels = dict(_LABEL.findall(m.group(2)))
        model = labels.get("model")
        if model is None:
            continue
        per = out.setdefault(model, {})
        per[m.group(1)] = per.get(m.group(1), 0.0) + float(m.group(3))
    return out


@dataclasses.dataclass(frozen=True)
class ModelWindow:
    """What the server saw for one model between two snapshots."""

    success: float
    failure: float
    queue_ms_mean: float | None
    compute_ms_mean: float | None
    compute_s: float  # busy time of the model's instance(s)

    @classmethod
    def between(cls, before: Mapping[str, float], after: Mapping[str, float]) -> ModelWindow:
        d = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in COUNTERS}
        n = d["nv_inference_request_success"]
        compute_us = (
            d["nv_inference_compute_input_duration_us"]
            + d["nv_inference_compute_infer_duration_us"]
            + d["nv_inference_compute_output_duration_us"]
        )
        return cls(
            success=n,
            failure=d["nv_inference_request_failure"],
            queue_ms_mean=d["nv_inference_queue_duration_us"] / n / 1000 if n else None,
            compute_ms_mean=compute_us / n / 1000 if n else None,
            compute_s=compute_us / 1e6,
        )
