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
