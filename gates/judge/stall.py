"""Server-wide stalls: a fault that hits both arms' serving is infrastructure, not the candidate.

Both arms are served by one server and sent interleaved requests, so a window in which
*neither* arm completed any request while requests failed (a frozen or swapped-out server, a
network partition) says nothing about either model: which arm's requests happened to be in
flight when it froze is chance. Such errors must not be charged to the candidate.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

MIN_GAP_S = 5.0  # shorter silences are ordinary queueing
GAP_FACTOR = 5.0  # …and so are silences shorter than 5 x the p95 latency of successful requests


@dataclasses.dataclass(frozen=True)
class Stall:
    start_s: float
    end_s: float
    errors: int  # failed requests in flight during the silence
    total_errors: int
    by_arm: dict[str, int]

    def describe(self) -> str:
        arms = ", ".join(f"{arm} {n}" for arm, n in sorted(self.by_arm.items()))
        return (
            f"server-wide stall: no request of either arm completed between t={self.start_s:.1f}s and "
            f"t={self.end_s:.1f}s ({self.end_s - self.start_s:.0f}s); {self.errors} of {self.total_errors} "
            f"failed requests were in flight then ({arms}): infrastructure, not the candidate"
        )


def find_stall(records: Sequence[dict[str, Any]]) -> Stall | None:
    """The longest silence of both arms that failed requests overlap, if any is long enough."""

    def end(r: dict[str, Any]) -> float:
        return float(r["t_start_s"]) + max(float(r["latency_ms"]), 0.0) / 1000

    rows = [r for r in records if math.isfinite(float(r["t_start_s"])) and math.isfinite(float(r["latency_ms"]))]
    failed = [r for r in rows if not r["ok"]]
    if not failed:
        return None
    done = sorted(end(r) for r in rows if r["ok"])
    latencies = sorted(float(r["latency_ms"]) / 1000 for r in rows if r["ok"])
    p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))] if latencies else 0.0
    min_gap = max(MIN_GAP_S, GAP_FACTOR * p95)
    edges = [min(float(r["t_start_s"]) for r in rows), *done, max(end(r) for r in rows)]
    best: Stall | None = None
    for a, b in itertools.pairwise(edges):
        if b - a < min_gap:
            continue
        inside = [r for r in failed if float(r["t_start_s"]) < b and end(r) > a]
        if inside and (best is None or len(inside) > best.errors):
            best = Stall(a, b, len(inside), len(failed), dict(Counter(str(r["arm"]) for r in inside)))
    return best
