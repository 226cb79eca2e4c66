"""Test support shipped with the package (process checks, later the GitHub test server)."""

from __future__ import annotations

from pathlib import Path


def tritonserver_pids() -> set[int]:
    """PIDs of every running tritonserver process on this machine (Linux /proc)."""
    pids = set()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if (proc / "comm").read_text().strip() == "tritonserver":
                    pids.add(int(proc.name))
            except OSError:
                continue
    return pids
