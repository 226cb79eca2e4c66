"""Test support shipped with the package (process checks, later the GitHub test server)."""

from __future__ import annotations

from pathlib import Path

SERVER_COMMS = ("tritonserver", "triton_python_b")  # the server and its Python-backend stubs (comm is cut at 15)


def tritonserver_pids() -> set[int]:
    """PIDs of every running tritonserver or Triton Python-stub process on this machine (Linux /proc)."""
    pids = set()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                comm = (proc / "comm").read_text().strip()
                stat = (proc / "stat").read_text()
            except OSError:
                continue
            if comm in SERVER_COMMS and ") Z " not in stat:  # zombies are already dead
                pids.add(int(proc.name))
    return pids
