"""The locust worker dies with the gates process that started it, even on kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

PARENT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from gates.loadgen.run import run_worker
    from gates.loadgen.spec import LoadSpec

    spec = LoadSpec(url="127.0.0.1:9", arms={"baseline": "b", "candidate": "c"}, prompts=("hi",),
                    prompt_weights=(1.0,), users=1, spawn_rate=1.0, duration_s=120.0, max_new_tokens=1,
                    max_new_tokens_max=1, timeout_s=1.0)
    run_worker(spec, Path(sys.argv[1]), lambda: None)
    """
)


def _worker_pids(out: Path) -> set[int]:
    pids = set()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"gates.loadgen.worker" in cmdline and str(out).encode() in cmdline:
                pids.add(int(proc.name))
    return pids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_kill_9_of_gates_takes_the_load_worker_with_it(tmp_path: Path) -> None:
    out = tmp_path / "load"
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(out)], env={**os.environ})
    try:
        deadline = time.monotonic() + 60
        while not (workers := _worker_pids(out)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert workers, "the load worker did not start"
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(p) for p in workers), "the load worker outlived gates"
    finally:
        for p in _worker_pids(out):
            os.kill(p, signal.SIGKILL)
