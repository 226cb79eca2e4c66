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


def _keep(
    run: Path,
    windows: list[tuple[float, float, float]],
    k_baseline: float = 1.25,
    seed: int = 0,
    window_sd: float = 0.0,
) -> None:
    """One probe directory per (baseline rate, candidate rate, how much more than nominal arrived):
    the p95 is e^(k · the rate that arrived) seconds (k 1.25 for the baseline, 1 for the candidate),
    so only the line on the arrived rates is exact; ``window_sd``: each arm's window slowed by its
    own lognormal factor (the scatter between windows that a run's interval is built from)."""
    rng = random.Random(seed)
    for i, (rb, rc, more) in enumerate(windows):
        d = run / f"probe-{i:02d}"
        d.mkdir(parents=True)
        top = max(rb, rc)
        spec = {"rate": top, "arm_share": {"baseline": rb / top, "candidate": rc / top}, "warmup_s": 2.0}
        (d / "load_spec.json").write_text(json.dumps({**spec, "duration_s": 102.0}))
        with (d / "requests.csv").open("w", newline="") as f:
            w = csv.DictWriter(f, FIELDS)
            w.writeheader()
            for arm, rate, k in (("baseline", rb, k_baseline), ("candidate", rc, 1.0)):
                n = round(rate * more * 100)  # arrivals in the 100 s measured span
                slowed = math.exp(rng.gauss(0.0, window_sd)) if window_sd else 1.0
                for j in range(n):
                    ms = 1000 * math.exp(k * n / 100) * slowed * (1 + 0.01 * rng.random())
                    w.writerow({"arm": arm, "user": 0, "t_start_s": 2 + 100 * j / n, "latency_ms": ms, "ok": 1})


MORE = [1.1, 0.9, 1.05, 0.92, 0.97, 1.03, 1.08, 0.95]
WINDOWS = [(0.8 * r, r, m) for r, m in zip([1.6, 1.8, 1.9, 2.0, 2.1, 2.2, 2.3, 2.4], MORE, strict=True)]


def _replay(*runs: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, str(REPO / "benchmarks" / "capacity.py"), "--replay", *map(str, runs), "--slo-ms", "7389"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    return dict(re.findall(r"(\w+)=(\S+)", proc.stdout.strip().splitlines()[-1]))


def test_the_replay_reads_the_kept_probes_on_the_rates_that_arrived(tmp_path: Path) -> None:
    _keep(tmp_path, WINDOWS)
    figures = _replay(tmp_path)
    assert figures["probes_per_arm"] == "8"
    # 7389 ms = e^2 s: the candidate crosses at 2 req/s arrived, the baseline at 1.6: a gain of 1.25
    assert abs(float(figures["gain"]) - 1.25) < 0.02
    assert float(figures["gain_halfwidth"]) < float(figures["gain_halfwidth_nominal"])


def test_runs_that_disagree_beyond_their_intervals_are_told_from_runs_that_agree(tmp_path: Path) -> None:
    """Two runs of the same servers (each window slowed by its own chance) against a run whose
    baseline's p95 rises 10% faster: a run's interval holds its own windows' scatter, so only the
    second pair is flagged."""
    same, other, slower = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    _keep(same, WINDOWS, window_sd=0.03)
    _keep(other, WINDOWS, seed=1, window_sd=0.03)
    # its baseline probed lower, around its own boundary (1.45 req/s), as a search would
    _keep(slower, [(0.7 * rc, rc, m) for _, rc, m in WINDOWS], k_baseline=1.25 * 1.1, seed=2, window_sd=0.03)
    agree = _replay(same, other)
    assert agree["runs"] == "2" and float(agree["f_p"]) > 0.05
    disagree = _replay(same, slower)
    assert float(disagree["f_p"]) < 0.001 and float(disagree["excess_sd"]) > 0.05
    # the pooled gain lies between the runs' (1.25 and 1.25 · 1.1)
    assert 1.25 < float(disagree["gain_pooled"]) < 1.25 * 1.1


def test_runs_on_different_machines_are_compared_within_each(tmp_path: Path) -> None:
    """Capacity is the hardware's: runs whose reports name different kinds of machine are grouped,
    each group's agreement stated on its own, and the pooled figure says how many machines it mixes."""
    runs = [tmp_path / n for n in ("a", "b", "c")]
    for i, run in enumerate(runs):
        _keep(run, WINDOWS, seed=i, window_sd=0.03)
    for run, fp in zip(runs, ("aaaaaaaaaaaa", "aaaaaaaaaaaa", "bbbbbbbbbbbb"), strict=True):
        machine = {"cpu": f"CPU {fp[0]}", "logical_cpus": 2, "isa": ["avx2"], "memory_bytes": None, "gpus": []}
        (run / "report.json").write_text(json.dumps({"machine": {**machine, "system": "Linux", "fingerprint": fp}}))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, str(REPO / "benchmarks" / "capacity.py"), "--replay", *map(str, runs), "--slo-ms", "7389"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "measured on 2 kinds of machine" in proc.stdout
    group = r"machine aaaaaaaaaaaa \(CPU a, 2 CPUs \(avx2\), no GPU\): a b: gain [\d.]+, between_run_sd="
    assert re.search(group, proc.stdout)
    assert "machine bbbbbbbbbbbb (CPU b, 2 CPUs (avx2), no GPU): c, one run" in proc.stdout
    last = dict(re.findall(r"(\w+)=(\S+)", proc.stdout.strip().splitlines()[-1]))
    assert last["runs"] == "3" and last["machines"] == "2"
    # runs without a machine in their records (kept before schema 10) are one group: "unknown"
    for run in runs:
        (run / "report.json").unlink()
    assert _replay(*runs)["machines"] == "1"


def test_a_directory_without_probes_is_named(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, str(REPO / "benchmarks" / "capacity.py"), "--replay", str(tmp_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode != 0 and f"{tmp_path}: no probe-*/ directories" in proc.stderr
