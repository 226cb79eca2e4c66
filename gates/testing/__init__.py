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


def webhooks_dir() -> Path:
    """GitHub's real webhook payloads and schemas: ``shared/github/webhooks`` beside the checkout.

    ``GATES_SHARED_DIR`` points elsewhere (a clone made away from ``shared/``).
    """
    import os

    root = Path(__file__).resolve().parents[2]
    shared = Path(os.environ.get("GATES_SHARED_DIR") or root.parent / "shared")
    path = shared / "github" / "webhooks"
    if not (path / "examples").is_dir():
        raise FileNotFoundError(
            f"{path}/examples is missing: the event tests read GitHub's payloads from shared/ beside the "
            "checkout (set GATES_SHARED_DIR to where shared/ is)"
        )
    return path
