"""How much a cached gate run costs beyond its measurements: wall time over load + drift time.

Runs ``gates run`` on the demo pipeline twice with one artifact store: the first run fills the
cache (optimize, build), the second is the cached run measured. Printed: the cached run's wall
time, its stage durations (run.json), the load + drift time and their ratio (goal ≤ 1.15).

    .venv/bin/python benchmarks/gate_overhead.py [--pipeline pipelines/demo.yaml] [--artifacts DIR]

With ``--artifacts`` pointing at a store that already holds the pipeline's artifacts the first
run is still made (it is cheap then) so that both runs see the same state.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def gate_run(pipeline: Path, artifacts: Path, out: Path) -> tuple[float, dict[str, float], int]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GATES_ARTIFACTS": str(artifacts)}
    cmd = [sys.executable, "-m", "gates.cli", "run", str(pipeline), "--output", str(out)]
    cmd += ["--ledger", str(artifacts / "bench-ledger.sqlite")]
    started = time.monotonic()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.monotonic() - started
    run = out / "run.json"
    if not run.is_file():
        sys.exit(f"gates run wrote no run.json (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return wall, json.loads(run.read_text())["durations_s"], proc.returncode


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pipeline", type=Path, default=Path("pipelines/demo.yaml"))
    ap.add_argument("--artifacts", type=Path, default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="gates-overhead-") as tmp:
        artifacts = args.artifacts or Path(tmp) / "artifacts"
        first_wall, _, rc1 = gate_run(args.pipeline, artifacts, Path(tmp) / "first")
        wall, durations, rc = gate_run(args.pipeline, artifacts, Path(tmp) / "cached")
    print(f"first run: {first_wall:.1f} s wall (exit {rc1})")
    stages = ", ".join(f"{k} {v:.1f}" for k, v in durations.items())
    print(f"cached run: {wall:.1f} s wall (exit {rc}); stages: {stages}")
    measured = durations.get("load", 0.0) + durations.get("drift", 0.0)
    other = wall - measured
    print(f"load + drift {measured:.1f} s; everything else {other:.1f} s")
    print(
        f"cached_wall_s={wall:.1f} load_drift_s={measured:.1f} other_s={other:.1f} overhead_ratio={wall / measured:.3f}"
    )


if __name__ == "__main__":
    main()
