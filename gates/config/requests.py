"""How many successful requests per arm each declared gate needs to reach a verdict.

The load stage runs until every arm has the most any declared gate needs (past ``load.duration_s``,
up to ``load.max_duration_s``), and ``gates validate`` compares these figures with the requests a
run can be expected to get. A gate short of them reports "no data" (or an undecided tail).
"""

from __future__ import annotations

import math

from gates.config.schema import GatesSection

# a p99 gate is certified (PASS or FAIL) on at least this many requests per arm, 10 beyond its p99;
# on fewer it is INCONCLUSIVE and says so (gates/judge/policy.py), so the load runs this long
P99_MIN_REQUESTS = 1000


def quantile_min_samples(q: float) -> int:
    """Samples per arm before the ``q``-quantile is estimated at all: 2 / (1 − q), 40 for the p95
    (the same rule as ``gates.judge.tail.min_samples``; a test keeps them equal)."""
    return math.ceil(2.0 / (1.0 - q) - 1e-9)


def requests_needed(gates: GatesSection) -> dict[str, int]:
    """Gate -> successful requests per arm it needs for a verdict (latency metrics: gates.min_requests;
    a tail ratio: enough samples beyond its quantile too). Gates that need none are absent."""
    need = {f"metric {m.series_key}": gates.min_requests for m in gates.metrics}
    for q, limit in ((0.95, gates.latency_p95_ratio_max), (0.99, gates.latency_p99_ratio_max)):
        if limit is not None:
            floor = P99_MIN_REQUESTS if q >= 0.99 else quantile_min_samples(q)
            need[f"latency_p{round(q * 100)}_ratio"] = max(gates.min_requests, floor)
    return need


def requests_target(gates: GatesSection) -> int:
    """What the load runs until (past duration_s): enough for every declared gate."""
    return max(requests_needed(gates).values(), default=gates.min_requests)
