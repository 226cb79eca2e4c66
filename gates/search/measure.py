"""One rung of one candidate: a gate run of the candidate pipeline on a share of the load, read back
as an :class:`~gates.search.halving.Observation` (cost and quality against the one baseline).

- cost (the objective) is the log ratio candidate/baseline (the candidate's own log value when the
  candidates' baselines differ, e.g. ``engine.backend`` is an axis): ``cost_at_slo`` from report.json's
  capacity at the SLO (``load.sweep``) or else its cost per 1M output tokens (``gates.cost``), else
  the mean time per output token (what a token costs on a machine billed by the hour);
  ``p95_latency`` from the arms' p95; ``model_size`` from the bytes of each arm's build (exact).
  Its standard error comes from the run's own request records (per-request time per output token,
  delta method on the log ratio; the p95 by bootstrap); rungs are pooled by inverse variance, so the
  information grows with the measured share as the group-sequential boundaries assume.
- quality is the greedy drift on the golden prompts, the same prompts at every rung: the loss is
  1 − top-1 agreement, measured exactly (standard error 0), and the margin is
  1 − ``gates.top1_agreement_min``; every quality gate of the pipeline must PASS too.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gates.config.search import Objective
from gates.errors import InfraError
from gates.loadgen.stats import read_records
from gates.search.halving import Observation

QUALITY_GATES = ("top1_agreement", "exact_match_rate", "mean_kl")  # the drift gates (gates/judge/policy.py)


@dataclasses.dataclass(frozen=True)
class RungResult:
    """What one gate run measured, as the search keeps it (search.json)."""

    run_dir: str
    verdict: str
    reason: str
    cost: float  # log ratio
    cost_se: float
    drop: float
    margin: float
    quality_pass: bool
    candidate_value: float | None  # the objective in its own unit (USD/1M tokens, ms, bytes)
    baseline_value: float | None
    digest: str | None  # the candidate's build digest
    report: str | None  # report.md of this run
    own_se: float = math.inf  # standard error of log(candidate_value) alone
    baseline_digest: str | None = None  # the baseline's build digest: what the ratio is against
    # why the search stopped this gate run between its load and its quality measurement
    # (gates/search/stop.py); "" when it ran to the end
    stopped: str = ""

    def observed(self, absolute: bool) -> tuple[float, float]:
        """(log cost, its standard error): against this run's baseline, or the candidate's own value
        (when the candidates' baselines differ, e.g. engine.backend is an axis, ratios do not compare)."""
        if not absolute:
            return self.cost, self.cost_se
        if self.candidate_value is None or self.candidate_value <= 0:
            return math.inf, math.inf
        return math.log(self.candidate_value), self.own_se

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _report(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "report.json"
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InfraError(f"{path}: the candidate's gate run left no readable report: {exc}") from None
    return data


def _records(run_dir: Path) -> list[dict[str, Any]]:
    files = sorted(run_dir.rglob("*.csv"), key=lambda p: p.stat().st_size)
    for path in reversed(files):  # the largest window: the throughput point
        try:
            rows = read_records(path)
        except (KeyError, ValueError):
            continue  # not a records file
        if rows:
            return rows
    return []


def _per_token(rows: list[dict[str, Any]], arm: str) -> NDArray[np.float64]:
    return np.array(
        [r["latency_ms"] / r["output_tokens"] for r in rows if r["arm"] == arm and r["ok"] and r["output_tokens"] > 0]
    )


def _log_var(x: NDArray[np.float64]) -> float:
    """Variance of the log of the mean of ``x`` (delta method); inf with fewer than 2 values."""
    return float(x.var(ddof=1) / (x.size * x.mean() ** 2)) if x.size >= 2 and x.mean() > 0 else math.inf


def _log_ratio_se(rows: list[dict[str, Any]]) -> tuple[float, float]:
    """(se of the log ratio of time per output token, se of the candidate's log alone)."""
    b, c = _log_var(_per_token(rows, "baseline")), _log_var(_per_token(rows, "candidate"))
    return math.sqrt(b + c), math.sqrt(c)


def _p95_se(rows: list[dict[str, Any]], seed: int = 0) -> tuple[float, float]:
    lat = {
        arm: np.array([r["latency_ms"] for r in rows if r["arm"] == arm and r["ok"]])
        for arm in ("baseline", "candidate")
    }
    if min(v.size for v in lat.values()) < 20:
        return math.inf, math.inf
    rng = np.random.default_rng(seed)
    cand = [math.log(np.percentile(rng.choice(lat["candidate"], lat["candidate"].size), 95)) for _ in range(200)]
    base = [math.log(np.percentile(rng.choice(lat["baseline"], lat["baseline"].size), 95)) for _ in range(200)]
    own, other = float(np.std(cand, ddof=1)), float(np.std(base, ddof=1))
    return math.hypot(own, other), own


def _tree_bytes(path: str | None) -> float | None:
    if not path or not Path(path).exists():
        return None
    p = Path(path)
    return float(sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else p.stat().st_size)


def _objective(report: dict[str, Any], objective: Objective) -> tuple[float | None, float | None]:
    """(candidate, baseline) in the objective's unit; None where the run did not measure it."""
    if objective == Objective.MODEL_SIZE:
        return _tree_bytes(report["candidate"].get("build_path")), _tree_bytes(report["baseline"].get("build_path"))
    load = report.get("load") or {}
    if objective == Objective.P95_LATENCY:
        if not load:
            return None, None
        return load["candidate"]["latency_ms"]["p95"], load["baseline"]["latency_ms"]["p95"]
    capacity = report.get("capacity") or {}
    if capacity.get("candidate") and capacity.get("baseline"):  # at the SLO (load.sweep)
        return capacity["candidate"].get("usd_per_1m_tokens"), capacity["baseline"].get("usd_per_1m_tokens")
    cost = report.get("cost") or {}
    if cost:
        return cost.get("candidate_usd_per_mtok"), cost.get("baseline_usd_per_mtok")
    if not load:
        return None, None
    return load["candidate"].get("ms_per_output_token"), load["baseline"].get("ms_per_output_token")


def _quality(report: dict[str, Any], margin: float) -> tuple[float, bool]:
    drift = report.get("drift") or {}
    top1 = drift.get("top1_agreement")
    drop = 1.0 - top1 if isinstance(top1, (int, float)) else math.inf
    gates = report.get("gates") or []
    quality_gates = [g for g in gates if str(g["name"]).startswith(QUALITY_GATES)]
    entries = report.get("quality") or []
    ok = drop <= margin and all(g["status"] != "FAIL" for g in quality_gates)
    ok = ok and all(e["status"] != "FAIL" for e in entries)
    return drop, ok


def cost_figures(
    cand: float | None, base: float | None, objective: Objective, rows: list[dict[str, Any]]
) -> tuple[float, float, float]:
    """(log ratio candidate/baseline, its standard error, the se of the candidate's log alone)."""
    if not (cand and base and cand > 0 and base > 0):
        return math.inf, math.inf, math.inf
    if objective == Objective.MODEL_SIZE:
        return math.log(cand / base), 0.0, 0.0
    se, own = _p95_se(rows) if objective == Objective.P95_LATENCY else _log_ratio_se(rows)
    return math.log(cand / base), se, own


def read_rung(run_dir: Path, objective: Objective, margin: float) -> RungResult:
    report = _report(run_dir)
    cand, base = _objective(report, objective)
    exact = objective == Objective.MODEL_SIZE
    cost, se, own = cost_figures(cand, base, objective, [] if exact else _records(run_dir))
    drop, quality_pass = _quality(report, margin)
    md = run_dir / "report.md"
    return RungResult(
        run_dir=str(run_dir),
        verdict=str(report["verdict"]),
        reason=str(report["reason"]),
        cost=cost,
        cost_se=se,
        drop=drop,
        margin=margin,
        quality_pass=quality_pass,
        candidate_value=cand,
        baseline_value=base,
        digest=report["candidate"].get("build_digest"),
        report=str(md) if md.exists() else None,
        own_se=own,
        baseline_digest=report["baseline"].get("build_digest"),
        stopped=stop_reason(run_dir),
    )


STOP_FILE = "search-stop.json"  # written by gates/search/stop.py in a gate run it stopped


def stop_reason(run_dir: Path) -> str:
    try:
        return str(json.loads((run_dir / STOP_FILE).read_text())["reason"])
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def pooled(rungs: list[RungResult], absolute: bool = False) -> Observation:
    """The cumulative observation over a candidate's rungs: costs pooled by inverse variance, quality
    from the latest run (the same prompts every rung), every run's gates. ``absolute``: the cost is
    the candidate's own value, not its ratio to the baseline (the candidates' baselines differ)."""
    seen = [r.observed(absolute) for r in rungs]
    finite = [(c, s) for c, s in seen if math.isfinite(c) and math.isfinite(s) and s > 0]
    exact = [(c, s) for c, s in seen if math.isfinite(c) and s == 0]
    if exact:
        cost, se = exact[-1][0], 0.0
    elif finite:
        w = [1.0 / s**2 for _, s in finite]
        cost = sum(wi * c for wi, (c, _) in zip(w, finite, strict=True)) / sum(w)
        se = 1.0 / math.sqrt(sum(w))
    else:
        cost, se = (seen[-1][0] if seen else math.inf), math.inf
    last = rungs[-1]
    if last.stopped:  # stopped on its cost before its quality was measured: the loss is unknown
        return Observation(
            cost if math.isfinite(cost) else 1e9, se if math.isfinite(se) else 1e9, 1e9, 0.0, last.margin,
            quality_measured=False,
        )  # fmt: skip
    drop = last.drop if math.isfinite(last.drop) else 1e9
    failed = any(r.verdict == "FAIL" for r in rungs) or not last.quality_pass
    return Observation(
        cost=cost if math.isfinite(cost) else 1e9,
        cost_se=se if math.isfinite(se) else 1e9,
        drop=drop,
        drop_se=0.0,
        margin=last.margin,
        # beyond the margin it stops as inferior; within it, any gate's FAIL (a quality gate beside
        # top-1 agreement, the error rate, latency) is that gate's own settled verdict
        gates_pass=drop > last.margin or not failed,
    )
