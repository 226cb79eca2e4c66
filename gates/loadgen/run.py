"""Runs the locust worker process and watches the server while it runs."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from gates.errors import InfraError, SubprocessError
from gates.loadgen.spec import LoadSpec

PR_SET_PDEATHSIG = 1  # linux/prctl.h


PARENT_ENV = "GATES_LOAD_PARENT_PID"


def die_with_parent(parent: int) -> None:
    """Called by the worker first thing: the kernel sends it SIGKILL when gates dies, even by
    kill -9 (no ``finally`` runs then), so a load worker never outlives the run that started it.

    The worker arms this itself rather than through ``preexec_fn``, which runs Python between
    fork and exec in a parent that already has threads (gRPC, metrics): not safe, and signals
    reaching gates while it forked were seen lost. The signal follows the *thread* that started
    the child; run_worker waits in that thread."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)


def run_worker(
    spec: LoadSpec,
    out_dir: Path,
    check_server: Callable[[], None],
    tick: Callable[[float], None] | None = None,
    grace_s: float = 60.0,
) -> Path:
    """Run the load; return the path of ``requests.csv``.

    ``check_server`` is called while the load runs and raises if the server died: the worker is
    then stopped and the error propagates (a dead server is never read as a slow model).
    ``tick(elapsed_s)`` is called on the same beat (e.g. to snapshot server metrics after warm-up).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    spec_path = out_dir / "load_spec.json"
    spec.write(spec_path)
    cmd = [sys.executable, "-m", "gates.loadgen.worker", str(spec_path), str(out_dir)]
    stdout_path, stderr_path = out_dir / "locust.stdout.log", out_dir / "locust.stderr.log"
    with stdout_path.open("wb") as so, stderr_path.open("wb") as se:
        env = {**os.environ, PARENT_ENV: str(os.getpid())}
        proc = subprocess.Popen(cmd, stdout=so, stderr=se, env=env)
        started = time.monotonic()
        deadline = started + spec.deadline_s + grace_s
        try:
            while proc.poll() is None:
                check_server()
                if tick is not None:
                    tick(time.monotonic() - started)
                if time.monotonic() > deadline:
                    raise InfraError(f"load generator did not finish within {spec.deadline_s + grace_s:.0f}s")
                time.sleep(0.2)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    check_server()
    if proc.returncode != 0:
        raise SubprocessError(
            "the locust load generator failed",
            cmd,
            proc.returncode,
            stdout_path.read_text(errors="replace"),
            stderr_path.read_text(errors="replace"),
        )
    records = out_dir / "requests.csv"
    if not records.is_file():
        raise InfraError(f"the load generator wrote no per-request records ({records})")
    return records
