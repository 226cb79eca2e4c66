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
# A shorter silence is a freeze too when both arms' timelines show it: requests of an arm with no
# failure in it were stuck across it (in flight for at least half of it), abnormally long
SHORT_MIN_S = 1.0
SHORT_FACTOR = 2.0  # x the p95 latency of successful requests
STUCK_SHARE = 0.5


@dataclasses.dataclass(frozen=True)
class Stall:
    start_s: float
    end_s: float
    errors: int  # failed requests in flight during the silence
    total_errors: int
    by_arm: dict[str, int]
    stuck: dict[str, int] = dataclasses.field(default_factory=dict)  # other arms' requests stuck across it

    def describe(self) -> str:
        arms = ", ".join(f"{arm} {n}" for arm, n in sorted(self.by_arm.items()))
        seen = "; ".join(f"{n} {arm} request(s) were stuck across it too" for arm, n in sorted(self.stuck.items()))
        return (
            f"server-wide stall: no request of either arm completed between t={self.start_s:.1f}s and "
            f"t={self.end_s:.1f}s ({self.end_s - self.start_s:.1f}s); {self.errors} of {self.total_errors} "
            f"failed requests were in flight then ({arms}){'; ' + seen if seen else ''}: "
            "infrastructure, not the candidate"
        )


def find_stall(records: Sequence[dict[str, Any]]) -> Stall | None:
    """The silence of both arms that the most failed requests overlap: one long enough to be no
    queueing, or a shorter one that another arm's requests were stuck across too."""

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
    short_gap = max(SHORT_MIN_S, SHORT_FACTOR * p95)
    best: Stall | None = None
    for a, b in itertools.pairwise(edges):
        if b - a < min(min_gap, short_gap):
            continue
        inside = [r for r in failed if float(r["t_start_s"]) < b and end(r) > a]
        if not inside:
            continue
        by_arm = dict(Counter(str(r["arm"]) for r in inside))
        stuck: dict[str, int] = {}
        if b - a < min_gap:  # short: only when another arm's requests show the same freeze
            spans = [r for r in rows if str(r["arm"]) not in by_arm]
            stuck = dict(
                Counter(
                    str(r["arm"])
                    for r in spans
                    if min(end(r), b) - max(float(r["t_start_s"]), a) >= STUCK_SHARE * (b - a)
                    and float(r["latency_ms"]) / 1000 > SHORT_FACTOR * p95
                )
            )
            if not stuck:
                continue
        if best is None or len(inside) > best.errors:
            best = Stall(a, b, len(inside), len(failed), by_arm, stuck)
    return best
