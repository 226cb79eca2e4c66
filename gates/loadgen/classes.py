"""Per-class figures of a paired load (TTFT, ITL, end-to-end latency by input bucket, turn, group),
and the samples of a gate scoped to a class (``gates.metrics[].where``)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from gates.loadgen.stats import percentiles
from gates.workloads.classes import decode, matches

# the labels the report breaks figures down by (input_tokens is a number per request: filters only)
CLASS_KEYS = ("workload", "input", "turn", "group")
ARMS = ("baseline", "candidate")


@dataclasses.dataclass(frozen=True)
class ClassArm:
    requests: int
    errors: int
    latency_ms: dict[str, float]
    ttft_ms: dict[str, float]
    itl_ms: dict[str, float]


@dataclasses.dataclass(frozen=True)
class ClassFigures:
    key: str  # a label: input, turn, group
    value: str  # its value: "≤128", "2", "0"
    arms: dict[str, ClassArm]

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _window(records: list[dict[str, Any]], warmup_s: float, end_s: float) -> list[dict[str, Any]]:
    """The measured window's records in arrival order (the judge reads warm-up and correlation off it)."""
    return sorted((r for r in records if warmup_s <= r["t_start_s"] < end_s), key=lambda r: float(r["t_start_s"]))


def _labels(r: Mapping[str, Any]) -> dict[str, str]:
    return decode(str(r.get("labels") or ""))


def class_figures(records: list[dict[str, Any]], warmup_s: float, end_s: float) -> list[ClassFigures]:
    """Both arms' figures per class of every label in CLASS_KEYS, in the label's order of first appearance."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in _window(records, warmup_s, end_s):
        labels = _labels(r)
        for key in CLASS_KEYS:
            if key in labels:
                groups.setdefault((key, labels[key]), []).append(r)
    out = []
    for (key, value), rows in sorted(groups.items(), key=lambda kv: (CLASS_KEYS.index(kv[0][0]), _order(kv[0][1]))):
        arms = {}
        for arm in ARMS:
            mine = [r for r in rows if r["arm"] == arm]
            ok = [r for r in mine if r["ok"]]
            arms[arm] = ClassArm(
                requests=len(mine),
                errors=len(mine) - len(ok),
                latency_ms=percentiles([r["latency_ms"] for r in ok]),
                ttft_ms=percentiles([r["ttft_ms"] for r in ok]),
                itl_ms=percentiles([r["itl_ms"] for r in ok]),
            )
        out.append(ClassFigures(key, value, arms))
    return out


def _order(value: str) -> tuple[float, str]:
    """Numbers in numeric order, buckets by their lower edge ("≤128" < "129-512" < ">2048")."""
    digits = value.lstrip("≤>").split("-")[0]
    try:
        n = float(digits)
    except ValueError:
        return (math.inf, value)
    return (n + (0.5 if value.startswith(">") else 0.0), value)


def scoped_series(
    records: list[dict[str, Any]], warmup_s: float, end_s: float, metric: str, where: Mapping[str, str]
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(baseline, candidate) samples of ``metric`` over the successful requests of the class ``where``."""
    out: dict[str, list[float]] = {arm: [] for arm in ARMS}
    for r in _window(records, warmup_s, end_s):
        if not r["ok"] or r["arm"] not in out or not matches(_labels(r), where):
            continue
        if metric == "output_tokens_per_s":
            v = r["output_tokens"] / (r["latency_ms"] / 1000) if r["latency_ms"] > 0 else math.nan
        else:
            try:  # itl_ms is empty for a one-token answer
                v = float(r[metric])
            except (TypeError, ValueError):
                continue
        if math.isfinite(v):
            out[r["arm"]].append(v)
    return tuple(out["baseline"]), tuple(out["candidate"])
