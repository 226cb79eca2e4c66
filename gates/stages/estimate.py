"""Before a run: how many requests per arm the configured load can be expected to get, and which
gates that leaves without a verdict (``gates validate``, and ``gates run`` at preflight).

A first pipeline that got 5 requests per arm found every latency gate "no data" after a 6–13
minute run; this says so before any model work, with the setting that would fix it. The rate
comes from the pipeline's last run (its report.json, found through the ledger or the artifact
store's runs/), scaled to the configured users and output length, or else from a stated rough
model. An open-loop load (``load.mode: open``) sends ``load.rate`` per arm by construction.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gates.config.requests import requests_needed, requests_target
from gates.config.schema import Pipeline
from gates.loadmodes import LoadMode

# The rough model without a run to go by: one request pair (both arms) per user takes
# max_new_tokens × this many seconds. Measured on the demo (SmolLM2-135M, ONNX Runtime GenAI, 2 CPU
# cores, 4 users, 16 tokens: 1.7 requests/s per arm); a GPU serves such a model ~7 times faster.
SECONDS_PER_TOKEN = {"cpu": 0.14, "cuda": 0.02}


@dataclasses.dataclass(frozen=True)
class ArmRate:
    per_s: float  # successful requests per second per arm (the slower arm)
    source: str  # where the figure comes from, said with the estimate


@dataclasses.dataclass(frozen=True)
class RequestEstimate:
    expected: int  # successful requests per arm the configured load should get
    rate: ArmRate
    needed: dict[str, int]  # gate -> requests per arm it needs for a verdict
    short: dict[str, int]  # the gates among them that will not get enough
    advice: str  # the setting that would fix it ("" when nothing is short)
    point: str = "throughput"  # the operating point (load.operating_points) this window is

    def warning(self) -> str | None:
        """The one line ``gates validate`` and ``gates run`` print when a gate cannot reach a verdict."""
        if not self.short:
            return None
        by_need: dict[int, list[str]] = {}
        for gate, n in self.short.items():
            by_need.setdefault(n, []).append(gate)
        needs = "; ".join(f"{', '.join(g)} need{'s' if len(g) == 1 else ''} {n}" for n, g in sorted(by_need.items()))
        where = "at the latency point (one request in flight per arm) " if self.point == "latency" else ""
        return f"~{self.expected} requests per arm expected {where}({self.rate.source}); {needs}: {self.advice}"


def report_rate(report: dict[str, Any], config: Pipeline, where: str, point: str = "throughput") -> ArmRate | None:
    """The per-arm rate a run's report.json measured at ``point``, scaled to the users ``config`` runs
    there (a closed loop's throughput grows about linearly with users until the server saturates:
    an upper bound). The latency point is ``load.operating_points``' entry of that name."""
    load = report.get("load")
    if not isinstance(load, dict):
        return None
    want = point_users(config, point)
    try:
        window: dict[str, Any] = load
        users = int(load["users"])
        if point == "latency":
            (window,) = [p for p in load.get("operating_points") or [] if p.get("name") == "latency"]
            users = int(window.get("concurrency") or 1)
        rates = []
        for arm in ("baseline", "candidate"):
            a = window[arm]
            ok = float(a["requests"]) - float(a.get("errors") or 0)
            rates.append(ok / float(a["window_s"]))
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
    per_s = min(rates)
    if per_s <= 0:
        return None
    scale = want / users if users > 0 else 1.0
    to = f"load.users {want}" if point == "throughput" else f"{want} in flight"
    scaled = "" if math.isclose(scale, 1.0) else f" with {users} users, scaled to {to}"
    return ArmRate(per_s * scale, f"{per_s:.2f}/s per arm measured by {where}{scaled}")


def operating_points(config: Pipeline) -> list[str]:
    """The windows a run measures, as the load stage runs them: a closed loop of one user is both points."""
    load = config.load
    one_user = load.mode == LoadMode.closed and load.users == 1
    points = [str(p) for p in load.operating_points]
    if "throughput" in points:
        return ["throughput"] if one_user or "latency" not in points else ["throughput", "latency"]
    return ["latency"]


def point_users(config: Pipeline, point: str) -> int:
    return 1 if point == "latency" else config.load.users


def last_run_rate(config: Pipeline, reports: Iterable[Path], point: str = "throughput") -> ArmRate | None:
    """The rate of the first of ``reports`` (newest first) that is this pipeline's and measured load."""
    for path in reports:
        try:
            report = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(report, dict) and report.get("pipeline") == config.name:
            rate = report_rate(report, config, f"the run in {path.parent}", point)
            if rate is not None:
                return rate
    return None


def store_reports(artifacts: Path) -> list[Path]:
    """The artifact store's run reports, newest first."""
    try:
        found = list((artifacts / "runs").glob("*/report.json"))
        return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return []


def rough_rate(config: Pipeline, device: str, point: str = "throughput") -> ArmRate:
    """Without a measured run: the stated rough model (or the open loop's configured rate)."""
    load = config.load
    if load.mode == LoadMode.open and load.rate is not None and point == "throughput":
        return ArmRate(load.rate, f"load.rate {load.rate:g}/s per arm, open loop")
    spt = SECONDS_PER_TOKEN.get(device, SECONDS_PER_TOKEN["cpu"])
    users = point_users(config, point)
    per_s = users / (load.max_new_tokens * spt)
    return ArmRate(
        per_s,
        f"rough model, no run measured yet: {users} user{'' if users == 1 else 's'} × one request per "
        f"{load.max_new_tokens} tokens × {spt} s/token on {device}",
    )


def rate_for(config: Pipeline, reports: Iterable[Path], device: str, point: str = "throughput") -> ArmRate:
    """The last run's measured rate, else the rough model."""
    return last_run_rate(config, reports, point) or rough_rate(config, device, point)


def expected_requests(config: Pipeline, per_s: float) -> int:
    """Requests per arm: duration_s's window, then on (to max_duration_s) until every gate has enough."""
    load = config.load
    first = per_s * (load.duration_s - load.warmup_s)
    if load.max_duration_s is None:
        return int(first)
    longest = per_s * (load.max_duration_s - load.warmup_s)
    return int(max(first, min(float(requests_target(config.gates)), longest)))


def estimate_requests(config: Pipeline, rate: ArmRate, point: str = "throughput") -> RequestEstimate:
    suffix = "@latency" if point == "latency" else ""  # the latency point's gates (gates/judge/points.py)
    needed = {f"{gate}{suffix}": n for gate, n in requests_needed(config.gates).items()}
    expected = expected_requests(config, rate.per_s)
    short = {gate: n for gate, n in needed.items() if expected < n}
    advice = ""
    if short:
        most = max(short.values())
        seconds = _round_up(config.load.warmup_s + most / rate.per_s)
        if config.load.max_duration_s is None:
            advice = (
                f"set load.max_duration_s to ~{seconds} (past load.duration_s the load goes on until "
                "every gate has its requests)"
            )
        else:
            advice = f"raise load.max_duration_s to ~{seconds}"
    return RequestEstimate(expected, rate, needed, short, advice, point)


def estimate_points(config: Pipeline, reports: list[Path], device: str) -> list[RequestEstimate]:
    """One estimate per operating point the run measures (each window runs to the same target)."""
    return [estimate_requests(config, rate_for(config, reports, device, p), p) for p in operating_points(config)]


def _round_up(seconds: float) -> int:
    step = 10 if seconds <= 300 else 60
    return int(math.ceil(seconds / step) * step)
