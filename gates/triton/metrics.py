"""Triton's Prometheus metrics: per-model counters, snapshotted around the measured window."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

_LINE = re.compile(r"^((?:nv|gates)_[a-z_]+)\{([^}]*)\}\s+([0-9.eE+-]+)$")
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


# The served model's own counters (gates/triton/python_model.py): its engine scheduler's steps, by
# sequences in the step (key ``gates_engine_steps_total:<n>``), busy time and tokens; and a gauge.
ENGINE_COUNTERS = ("gates_engine_busy_seconds_total", "gates_engine_tokens_total")
ENGINE_STEPS = "gates_engine_steps_total"
ENGINE_MAX_BATCH = "gates_engine_max_batch"
ENGINE_HEALTHY = "gates_engine_healthy"

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
    """{model: {counter: value}} for the counters above (engine steps keyed by their size)."""
    out: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        m = _LINE.match(line.strip())
        if not m:
            continue
        name = m.group(1)
        labels = dict(_LABEL.findall(m.group(2)))
        if name == ENGINE_STEPS and labels.get("batch", "").isdigit():
            name = f"{ENGINE_STEPS}:{int(labels['batch'])}"
        elif name not in COUNTERS and name not in ENGINE_COUNTERS and name not in (ENGINE_MAX_BATCH, ENGINE_HEALTHY):
            continue
        model = labels.get("model")
        if model is None:
            continue
        per = out.setdefault(model, {})
        per[name] = per.get(name, 0.0) + float(m.group(3))
    return out


@dataclasses.dataclass(frozen=True)
class ModelWindow:
    """What the server saw for one model between two snapshots."""

    success: float
    failure: float
    queue_ms_mean: float | None
    compute_ms_mean: float | None
    compute_s: float  # busy time of the model's instance(s)
    # the engine's scheduler (absent: the model served one request at a time, or reports nothing)
    steps_by_size: dict[int, int] = dataclasses.field(default_factory=dict)  # sequences in a step -> steps
    engine_busy_s: float | None = None  # time inside the engine's steps
    engine_tokens: float | None = None
    max_batch: int | None = None  # what the engine may run in one step
    engine_healthy: bool | None = None  # False: the engine's scheduler died or a step hung (see the server log)

    @property
    def batch_size_mean(self) -> float | None:
        n = sum(self.steps_by_size.values())
        return sum(k * v for k, v in self.steps_by_size.items()) / n if n else None

    @property
    def batch_size_max(self) -> int | None:
        return max(self.steps_by_size) if self.steps_by_size else None

    @classmethod
    def between(cls, before: Mapping[str, float], after: Mapping[str, float]) -> ModelWindow:
        d = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in COUNTERS}
        n = d["nv_inference_request_success"]
        compute_us = (
            d["nv_inference_compute_input_duration_us"]
            + d["nv_inference_compute_infer_duration_us"]
            + d["nv_inference_compute_output_duration_us"]
        )
        prefix = ENGINE_STEPS + ":"
        steps = {
            int(k[len(prefix) :]): round(after[k] - before.get(k, 0.0))
            for k in after
            if k.startswith(prefix) and after[k] - before.get(k, 0.0) > 0
        }
        engine = ENGINE_COUNTERS[0] in after
        return cls(
            steps_by_size=steps,
            engine_busy_s=after[ENGINE_COUNTERS[0]] - before.get(ENGINE_COUNTERS[0], 0.0) if engine else None,
            engine_tokens=after.get(ENGINE_COUNTERS[1], 0.0) - before.get(ENGINE_COUNTERS[1], 0.0) if engine else None,
            max_batch=int(after[ENGINE_MAX_BATCH]) if ENGINE_MAX_BATCH in after else None,
            engine_healthy=bool(after[ENGINE_HEALTHY]) if ENGINE_HEALTHY in after else None,
            success=n,
            failure=d["nv_inference_request_failure"],
            queue_ms_mean=d["nv_inference_queue_duration_us"] / n / 1000 if n else None,
            compute_ms_mean=compute_us / n / 1000 if n else None,
            compute_s=compute_us / 1e6,
        )
