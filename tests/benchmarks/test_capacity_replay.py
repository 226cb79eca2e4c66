"""benchmarks/capacity.py --replay, run as a user runs it on records kept with --keep: the same
probes read with the lines on the nominal rates and on the rates that arrived."""

from __future__ import annotations

import csv
import json
import math
import os
import random
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIELDS = ["arm", "user", "t_start_s", "latency_ms", "ttft_ms", "itl_ms", "ok", "output_tokens"]


def _keep(run: Path, windows: list[tuple[float, float, float]]) -> None:
    """One probe directory per (baseline rate, candidate rate, how much more than nominal arrived):
    the p95 is e^(k · the rate that arrived) seconds (k 1.25 for the baseline, 1 for the candidate),
    so only the line on the arrived rates is exact."""
    rng = random.Random(0)
    for i, (rb, rc, more) in enumerate(windows):
        d = run / f"probe-{i:02d}"
        d.mkdir(parents=True)
        top = max(rb, rc)
        spec = {"rate": top, "arm_share": {"baseline": rb / top, "candidate": rc / top}, "warmup_s": 2.0}
        (d / "load_spec.json").write_text(json.dumps({**spec, "duration_s": 102.0}))
        with (d / "requests.csv").open("w", newline="") as f:
            w = csv.DictWriter(f, FIELDS)
            w.writeheader()
            for arm, rate, k in (("baseline", rb, 1.25), ("candidate", rc, 1.0)):
                n = round(rate * more * 100)  # arrivals in the 100 s measured span
                for j in range(n):
                    ms = 1000 * math.exp(k * n / 100) * (1 + 0.01 * rng.random())
                    w.writerow({"arm": arm, "user": 0, "t_start_s": 2 + 100 * j / n, "latency_ms": ms, "ok": 1})


def test_the_replay_reads_the_kept_probes_on_the_rates_that_arrived(tmp_path: Path) -> None:
    more = [1.1, 0.9, 1.05, 0.92, 0.97, 1.03, 1.08, 0.95]
    _keep(tmp_path, [(0.8 * r, r, m) for r, m in zip([1.6, 1.8, 1.9, 2.0, 2.1, 2.2, 2.3, 2.4], more, strict=True)])
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, str(REPO / "benchmarks" / "capacity.py"), "--replay", str(tmp_path), "--slo-ms", "7389"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    last = proc.stdout.strip().splitlines()[-1]
    figures = dict(re.findall(r"(\w+)=(\S+)", last))
    assert figures["probes_per_arm"] == "8"
    # 7389 ms = e^2 s: the candidate crosses at 2 req/s arrived, the baseline at 1.6: a gain of 1.25
    assert abs(float(figures["gain"]) - 1.25) < 0.02
    assert float(figures["gain_halfwidth"]) < float(figures["gain_halfwidth_nominal"])


def test_a_directory_without_probes_is_named(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, str(REPO / "benchmarks" / "capacity.py"), "--replay", str(tmp_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode != 0 and f"{tmp_path}: no probe-*/ directories" in proc.stderr
