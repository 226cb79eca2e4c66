"""How fast the command line answers: ``gates --help``, a config error, ``gates validate``.

Each is a fresh ``python -m gates.cli`` process (what a person or a CI step starts), timed wall
clock, the median of ``--repeat`` runs. Goals (issue 31): help and a config error under 1 s,
``gates validate pipelines/demo.yaml`` under 5 s. Printed one ``key=value`` a line:

    cli_help_s=0.31
    config_error_s=0.42
    validate_s=0.55

    .venv/bin/python benchmarks/cli.py [--repeat 5] [--pipeline pipelines/demo.yaml]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BAD_CONFIG = "name: x\nmodel:\n  source: builtin:tiny-llama\n  revision: main\ngolden:\n  suites: [a.jsonl]\n"


def timed(args: list[str], repeat: int, expect: int, tmp: Path) -> float:
    """Median wall time of ``gates ARGS``; a run that exits other than ``expect`` stops the benchmark."""
    times = []
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GATES_LEDGER": str(tmp / "absent-ledger.sqlite")}
    for _ in range(repeat):
        started = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "gates.cli", *args], capture_output=True, text=True, env=env)
        times.append(time.monotonic() - started)
        if proc.returncode != expect:
            sys.exit(f"gates {' '.join(args)} exited {proc.returncode}, not {expect}:\n{proc.stdout}\n{proc.stderr}")
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--pipeline", type=Path, default=Path("pipelines/demo.yaml"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bad = Path(tmp) / "bad.yaml"
        bad.write_text(BAD_CONFIG)
        print(f"cli_help_s={timed(['--help'], args.repeat, 0, Path(tmp)):.2f}")
        print(f"config_error_s={timed(['validate', str(bad)], args.repeat, 2, Path(tmp)):.2f}")
        print(f"validate_s={timed(['validate', str(args.pipeline)], args.repeat, 0, Path(tmp)):.2f}")


if __name__ == "__main__":
    main()
