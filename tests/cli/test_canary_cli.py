"""``gates canary`` options are checked by click: out-of-range input exits 2 before anything runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gates.ledger import Ledger

REPO = Path(__file__).resolve().parents[2]  # PIPELINE "demo" is pipelines/demo.yaml there


def test_canary_serve_weight_out_of_range_exits_2() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "gates.cli", "canary", "serve", "demo", "--triton", "127.0.0.1:1", "--stable", "a",
         "--canary", "b", "--weight", "150"],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )  # fmt: skip
    assert proc.returncode == 2 and "150 is not in the range 0<=x<=100" in proc.stderr, proc.stderr


def _gates(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gates.cli", *args], capture_output=True, text=True, timeout=120, cwd=REPO
    )


def test_canary_serve_refuses_to_record_a_canary_without_a_build_digest(tmp_path: Path) -> None:
    """Issue 24: a canary registered without a digest was promoted on any PASS of its pipeline."""
    ledger = tmp_path / "l.sqlite"
    proc = _gates("canary", "serve", "demo", "--triton", "127.0.0.1:1", "--stable", "a", "--canary", "b",
                  "--ledger", str(ledger))  # fmt: skip
    assert proc.returncode == 2 and "a canary without one is never promoted" in proc.stderr, proc.stderr
    assert not ledger.exists() or Ledger(str(ledger)).canary("demo") is None
    proc = _gates("canary", "serve", "demo", "--triton", "127.0.0.1:1", "--stable", "a", "--canary", "b",
                  "--digest", "abc")  # fmt: skip
    assert proc.returncode == 2 and "64 lowercase hex digits" in proc.stderr, proc.stderr


def test_register_kserve_needs_the_build_digest(tmp_path: Path) -> None:
    proc = _gates("canary", "register-kserve", "demo", "--namespace", "ml", "--name", "p", "--storage-uri", "s3://b/p",
                  "--ledger", str(tmp_path / "l.sqlite"))  # fmt: skip
    assert proc.returncode == 2 and "Missing option '--digest'" in proc.stderr, proc.stderr
