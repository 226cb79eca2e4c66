"""Locust's distributed mode for a load one process cannot carry (``load.generator_processes``).

The worker process becomes locust's *master* (``Environment.create_master_runner``) and starts
that many locust *workers* (``create_worker_runner``), each its own process, connected over
locust's ZeroMQ protocol on 127.0.0.1. The master spreads the users over the workers (a closed
loop's ``load.users``; an open loop's one scheduler per worker, each at ``rate / processes`` with
its own seed: independent Poisson streams add up to one at ``rate``) and runs the stopping rule on
the statistics the workers report. Every worker sends each pair to both arms as the single
process does and writes its own records (``requests-w<i>.csv``, pair ids prefixed ``w<i>-``);
the master merges them into ``requests.csv`` and the summaries into ``summary.json``: the
self-check takes the busiest process (a saturated worker still delays what it times).
"""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from gates.loadgen.spec import RECORD_FIELDS
from gates.loadgen.summary import ArrivalStats, GeneratorSummary, Stopped


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_workers(spec_path: Path, out_dir: Path, n: int, port: int, parent_env: str) -> list[subprocess.Popen[bytes]]:
    """``n`` locust worker processes for the master listening on ``port``; each dies with this one."""
    procs = []
    for i in range(n):
        cmd = [
            sys.executable,
            "-m",
            "gates.loadgen.worker",
            str(spec_path),
            str(out_dir),
            "--worker",
            str(i),
            str(port),
        ]
        log = (out_dir / f"locust-w{i}.log").open("wb")
        env = {**os.environ, parent_env: str(os.getpid())}
        procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env))
    return procs


def merge_records(out_dir: Path, n: int) -> int:
    """``requests-w*.csv`` into ``requests.csv``; the number of rows."""
    rows: list[dict[str, Any]] = []
    for i in range(n):
        path = out_dir / f"requests-w{i}.csv"
        if path.is_file():
            with path.open(newline="") as f:
                rows.extend(csv.DictReader(f))
    rows.sort(key=lambda r: float(r["t_start_s"]))
    with (out_dir / "requests.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=RECORD_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)


def merge_summaries(
    out_dir: Path, n: int, stopped: Stopped, users: int, mode: str, rate: float | None
) -> GeneratorSummary:
    """One summary over the workers: CPU summed and its utilisation the busiest process's, lags the worst."""
    parts = [
        GeneratorSummary.from_json(json.loads(p.read_text()))
        for p in (out_dir / f"summary-w{i}.json" for i in range(n))
        if p.is_file()
    ]
    if len(parts) < n:
        raise RuntimeError(f"only {len(parts)} of {n} locust workers wrote their summary (see {out_dir}/locust-w*.log)")

    def worst(values: list[float | None]) -> float | None:
        known = [v for v in values if v is not None]
        return max(known) if known else None

    arrivals = [p.arrivals for p in parts if p.arrivals is not None]
    return GeneratorSummary(
        wall_s=max(p.wall_s for p in parts),
        generator_cpu_s=sum(p.generator_cpu_s for p in parts),
        generator_cpu_util=worst([p.generator_cpu_util for p in parts]),
        loop_lag_ms_p50=worst([p.loop_lag_ms_p50 for p in parts]),
        loop_lag_ms_p95=worst([p.loop_lag_ms_p95 for p in parts]),
        loop_lag_samples=sum(p.loop_lag_samples for p in parts),
        users=users,
        locust_requests=sum(p.locust_requests for p in parts),
        locust_failures=sum(p.locust_failures for p in parts),
        records=sum(p.records for p in parts),
        stopped=stopped,
        mode=mode,
        arrivals=ArrivalStats(
            rate,
            sum(a.arrivals for a in arrivals),
            worst([a.arrival_lag_ms_p95 for a in arrivals]),
            sum(a.dropped for a in arrivals),
        )
        if arrivals
        else None,
        processes=n,
    )
