"""Capacity at the SLO on the demo pipeline: an open-loop rate sweep through ``gates run``.

The demo pipeline (SmolLM2-135M-Instruct, ORT GenAI int8 vs fp32, local tritonserver) with its
load section replaced: a short open-loop main window, then a sweep of Poisson arrival rates per
arm, both arms interleaved in every step, against a p95 latency SLO. Printed: the per-step table
and each arm's capacity with its bracket, the gain and the cost per 1M output tokens at capacity
(from report.json's ``capacity``).

    .venv/bin/python benchmarks/capacity.py [--rates 0.5,1,1.5,2.5] [--step 15] [--slo-ms 1500]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def fmt(x: float | None, spec: str = ".3g") -> str:
    return "—" if x is None else format(x, spec)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rates", default="0.5,1,1.5,2.5", help="requests/s per arm, increasing")
    ap.add_argument("--step", type=float, default=15.0, help="seconds per step, warm-up included")
    ap.add_argument("--slo-ms", type=float, default=1500.0, help="p95 end-to-end latency limit")
    ap.add_argument("--artifacts", type=Path, default=REPO / "artifacts")
    args = ap.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    cfg = yaml.safe_load((REPO / "pipelines" / "demo.yaml").read_text())
    cfg["golden"]["suites"] = [str(REPO / s) for s in cfg["golden"]["suites"]]
    cfg["load"] = {
        "mode": "open",
        "rate": rates[0],
        "arrivals": "poisson",
        "duration_s": args.step,
        "warmup_s": 2,
        "max_new_tokens": 16,
        "slo": {"latency_ms": args.slo_ms},
        "sweep": {"over": "rate", "values": rates, "duration_s": args.step, "warmup_s": 2},
    }
    with tempfile.TemporaryDirectory(prefix="gates-capacity-") as tmp:
        pipeline = Path(tmp) / "pipelines" / "capacity.yaml"
        pipeline.parent.mkdir()
        pipeline.write_text(yaml.safe_dump(cfg))
        out = Path(tmp) / "run"
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        cmd = [sys.executable, "-m", "gates.cli", "run", str(pipeline), "--output", str(out)]
        cmd += ["--artifacts", str(args.artifacts), "--ledger", str(Path(tmp) / "ledger.sqlite")]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        report_path = out / "report.json"
        if not report_path.is_file():
            sys.exit(f"no report.json (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        report = json.loads(report_path.read_text())
    cap = report.get("capacity")
    if not cap:
        sys.exit(f"no capacity in the report: {report.get('reason')}\n{proc.stdout[-3000:]}")
    print(f"SLO: p95 latency ≤ {args.slo_ms:g} ms and error rate ≤ gates.error_rate_max; steps of {args.step:g} s")
    print(f"{'rate/arm':>8} | {'base p95':>8} {'req/s':>6} {'status':>7} | {'cand p95':>8} {'req/s':>6} {'status':>7}")
    for s in cap["steps"]:
        b, c = s["baseline"], s["candidate"]
        print(
            f"{s['value']:>8g} | {fmt(b['latency_ms']['p95'], '.0f'):>8} {fmt(b['rps'], '.2f'):>6} {b['status']:>7} | "
            f"{fmt(c['latency_ms']['p95'], '.0f'):>8} {fmt(c['rps'], '.2f'):>6} {c['status']:>7}"
        )
    for arm in ("baseline", "candidate"):
        a = cap[arm]
        high = "beyond the sweep" if a["high"] is None else fmt(a["high"])
        print(
            f"{arm}: capacity {fmt(a['max_rate'])} req/s per arm (bracket {fmt(a['low'])} to {high}), "
            f"${fmt(a['usd_per_1m_tokens'], '.2f')} per 1M output tokens there"
        )
    low, high = cap["gain_interval"]
    print(f"gain {fmt(cap['gain'])} (bracket {fmt(low)} to {fmt(high)}); verdict {report['verdict']}")
    print(
        f"baseline_capacity={fmt(cap['baseline']['max_rate'])} baseline_low={fmt(cap['baseline']['low'])} "
        f"baseline_high={fmt(cap['baseline']['high'])} candidate_capacity={fmt(cap['candidate']['max_rate'])} "
        f"candidate_low={fmt(cap['candidate']['low'])} candidate_high={fmt(cap['candidate']['high'])} "
        f"gain={fmt(cap['gain'])} baseline_usd_per_1m={fmt(cap['baseline']['usd_per_1m_tokens'], '.2f')} "
        f"candidate_usd_per_1m={fmt(cap['candidate']['usd_per_1m_tokens'], '.2f')}"
    )


if __name__ == "__main__":
    main()
