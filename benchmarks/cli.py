"""How fast the command line answers: ``gates --help``, a config error, ``gates validate``.

Each is a fresh ``python -m gates.cli`` process (what a person or a CI step starts), timed wall
clock, the median of ``--repeat`` runs. Goals (issue 31): help and a config error under 1 s,
``gates validate pipelines/demo.yaml`` under 5 s. Printed one ``key=value`` a line:

    cli_help_s=0.15
    cli_help_cpu_s=0.12
    config_error_s=…
    …

    .venv/bin/python benchmarks/cli.py [--repeat 5] [--pipeline pipelines/demo.yaml]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BAD_CONFIG = "name: x\nmodel:\n  source: builtin:tiny-llama\n  revision: main\ngolden:\n  suites: [a.jsonl]\n"


def timed(args: list[str], repeat: int, expect: int, tmp: Path) -> tuple[float, float]:
    """Median wall and CPU (user + system) time of ``gates ARGS``: on a shared machine the CPU time
    is what the command itself costs. A run that exits other than ``expect`` stops the benchmark."""
    times, cpu = [], []
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GATES_LEDGER": str(tmp / "absent-ledger.sqlite")}
    for _ in range(repeat):
        started, before = time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)
        proc = subprocess.run([sys.executable, "-m", "gates.cli", *args], capture_output=True, text=True, env=env)
        times.append(time.monotonic() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
        if proc.returncode != expect:
            sys.exit(f"gates {' '.join(args)} exited {proc.returncode}, not {expect}:\n{proc.stdout}\n{proc.stderr}")
    return statistics.median(times), statistics.median(cpu)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--pipeline", type=Path, default=Path("pipelines/demo.yaml"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bad = Path(tmp) / "bad.yaml"
        bad.write_text(BAD_CONFIG)
        runs = {
            "cli_help": (["--help"], 0),
            "config_error": (["validate", str(bad)], 2),
            # the first validate fills the artifact store's cache of data files that passed their
            # expectations (Great Expectations, seconds); later ones, as in CI, find it
            "validate": (["validate", str(args.pipeline)], 0),
        }
        for key, (argv, code) in runs.items():
            wall, cpu = timed(argv, args.repeat, code, Path(tmp))
            print(f"{key}_s={wall:.2f}")
            print(f"{key}_cpu_s={cpu:.2f}")


if __name__ == "__main__":
    main()
