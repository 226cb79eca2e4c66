"""Re-read a capacity search's kept probe records (``benchmarks/capacity.py --keep DIR``) through
today's statistics: each arm's boundary and the gain with their intervals, the local lines on the
nominal rates and on the rates that arrived, side by side on the same probes.

The probes were placed by the search as it ran; only the reading of them changes here, so this
says what the newer reading does to the same windows, not what a new search would have probed."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from gates.judge.capacity_search import ArmProbe, Probe, SearchPlan, SearchResult, search_result
from gates.loadgen.search import ARMS, arm_probe


def _records(path: Path) -> list[dict[str, Any]]:
    rows = []
    with path.open() as f:
        for r in csv.DictReader(f):
            ms = float(r["latency_ms"]) if r["latency_ms"] else math.nan
            rows.append({"arm": r["arm"], "t_start_s": float(r["t_start_s"]), "latency_ms": ms, "ok": r["ok"] == "1"})
    return rows


def kept_probes(run: Path) -> list[Probe]:
    """The probes of one kept run, in the order they ran."""
    probes = []
    for d in sorted(run.glob("probe-*")):
        spec = json.loads((d / "load_spec.json").read_text())
        share = spec.get("arm_share")
        rates = {arm: spec["rate"] * (share[arm] if share else 1.0) for arm in ARMS}
        records = _records(d / "requests.csv")
        arms = {arm: arm_probe(records, arm, "latency_ms", spec["warmup_s"], spec["duration_s"]) for arm in ARMS}
        probes.append(Probe.at(rates, arms))
    if not probes:
        raise SystemExit(f"{run}: no probe-*/ directories (kept with benchmarks/capacity.py --keep)")
    return probes


def machine_of(run: Path) -> dict[str, Any] | None:
    """The machine the run measured on, from its kept report.json (None: not recorded, schema < 10)."""
    try:
        machine = json.loads((run / "report.json").read_text()).get("machine")
    except (OSError, ValueError):
        return None
    return machine if isinstance(machine, dict) else None


def by_machine(machines: list[dict[str, Any] | None]) -> dict[str, list[int]]:
    """The runs' indices grouped by their machines' fingerprints ("unknown": not recorded). Capacity
    is the hardware's: runs on different kinds of machine are not expected to agree."""
    groups: dict[str, list[int]] = {}
    for i, m in enumerate(machines):
        groups.setdefault(str(m.get("fingerprint")) if m else "unknown", []).append(i)
    return groups


def _nominal(p: Probe) -> Probe:
    arms: dict[str, ArmProbe] = {a: dataclasses.replace(v, offered=None) for a, v in p.arms.items()}
    return dataclasses.replace(p, arms=arms)


def replay(run: Path, limit_ms: float, error_rate_max: float, confidence: float = 0.95) -> dict[str, SearchResult]:
    """The kept run read with the lines on the nominal rates and on the rates that arrived."""
    probes = kept_probes(run)
    plan = SearchPlan(limit_ms, error_rate_max, probes[0].rate, per_arm=True, confidence=confidence)
    return {
        "nominal": search_result([_nominal(p) for p in probes], plan, confidence=confidence),
        "offered": search_result(probes, plan, confidence=confidence),
    }


@dataclasses.dataclass(frozen=True)
class Agreement:
    """Do several runs' gains agree within their own intervals? A run's interval holds what varies
    window to window within it; what varies from one run to the next (a server started afresh, the
    machine's state, the search's own path) it cannot see. The runs' spread of log gain is set
    against their own standard errors (each read back from its Student t interval) by an F test:
    the between-run variance over the mean within-run one. Not Cochran's Q: each run's error rests
    on 6–20 degrees of freedom, and weighting by such estimates flags agreeing runs (two runs of
    the same synthetic servers gave Q's p 1e-7)."""

    runs: int
    pooled_gain: float  # the runs' geometric mean
    between_sd: float  # of log gain across the runs
    within_se: float  # the runs' own standard errors of log gain, root mean square
    excess_sd: float  # the between-run sd the intervals leave out: √max(0, between² − within²)
    f: float
    p: float


def agreement(results: list[SearchResult], confidence: float = 0.95) -> Agreement:
    from scipy.stats import f as f_dist
    from scipy.stats import norm

    read = []
    for r in results:
        if r.gain is None or r.gain_low is None or r.gain_high is None:
            continue
        # a bootstrap interval (no fitted lines) is read with the normal quantile
        se = r.gain_log_se or math.log(r.gain_high / r.gain_low) / (2 * float(norm.ppf(0.5 + confidence / 2)))
        read.append((math.log(r.gain), se, r.gain_df or 1000))
    if len(read) < 2:
        raise SystemExit(f"{len(read)} of {len(results)} runs have a bounded gain interval: nothing to compare")
    k = len(read)
    mean = sum(g for g, _, _ in read) / k
    between2 = sum((g - mean) ** 2 for g, _, _ in read) / (k - 1)
    within2 = sum(se * se for _, se, _ in read) / k
    f = between2 / within2
    p = float(f_dist.sf(f, k - 1, min(sum(df for _, _, df in read), 1000)))
    excess = math.sqrt(max(0.0, between2 - within2))
    return Agreement(k, math.exp(mean), math.sqrt(between2), math.sqrt(within2), excess, f, p)
