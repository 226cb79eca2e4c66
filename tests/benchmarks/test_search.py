"""benchmarks/search.py, run as a user runs it: its last line is the three figures the issue asks for."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_last_line_holds_the_three_rates() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "search.py"), "--trials", "40", "--candidates", "6"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    last = proc.stdout.strip().splitlines()[-1]
    m = re.fullmatch(r"search_found=(\S+) search_false_recommend=(\S+) search_time_ratio=(\S+)", last)
    assert m is not None, last
    found, false, ratio = (float(x) for x in m.groups())
    assert 0 <= found + false <= 1 and 0 < ratio < 1  # disjoint outcomes; some candidates stop early
