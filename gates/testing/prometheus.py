"""A throwaway Prometheus (Debian's ``prometheus`` package) for tests: scrapes the given targets
every half second, on 127.0.0.1 and a free port, data in a temporary folder; stopped by PID."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from gates.errors import InfraError

INSTALL_HINT = "install Prometheus (Debian: apt-get install prometheus)"


def prometheus_available() -> str | None:
    """None when a prometheus binary is here, else why not (tests skip with it)."""
    return None if shutil.which("prometheus") else f"prometheus is not installed here; {INSTALL_HINT}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def local_prometheus(targets: Sequence[str], workdir: Path, interval_s: float = 0.5) -> Iterator[str]:
    """Yields Prometheus' base URL once it answers; ``targets``: host:port of /metrics endpoints."""
    binary = shutil.which("prometheus")
    if binary is None:
        raise InfraError(f"prometheus is not installed here; {INSTALL_HINT}")
    workdir.mkdir(parents=True, exist_ok=True)
    listed = ", ".join(f"'{t}'" for t in targets)
    ms = max(round(interval_s * 1000), 100)  # Prometheus durations are integers with a unit
    config = workdir / "prometheus.yml"
    config.write_text(
        f"global:\n  scrape_interval: {ms}ms\n  evaluation_interval: {ms}ms\n"
        f"scrape_configs:\n  - job_name: triton\n    static_configs:\n      - targets: [{listed}]\n"
    )
    port = _free_port()
    cmd = [binary, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}",
           f"--web.listen-address=127.0.0.1:{port}"]  # fmt: skip
    with (workdir / "prometheus.log").open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise InfraError(f"prometheus exited during startup; log: {workdir / 'prometheus.log'}")
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/-/ready", timeout=2) as r:
                if r.status == 200:
                    break
            if time.monotonic() > deadline:
                raise InfraError(f"prometheus was not ready after 60 s; log: {workdir / 'prometheus.log'}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
