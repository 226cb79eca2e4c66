"""``gates canary`` options are checked by click: out-of-range input exits 2 before anything runs."""

from __future__ import annotations

import subprocess
import sys


def test_canary_serve_weight_out_of_range_exits_2() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "gates.cli", "canary", "serve", "p", "--triton", "127.0.0.1:1", "--stable", "a",
         "--canary", "b", "--weight", "150"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2 and "150 is not in the range 0<=x<=100" in proc.stderr, proc.stderr
