"""A throwaway PostgreSQL server for tests: initdb in a temporary folder, on 127.0.0.1, a free port.

PostgreSQL refuses to run as root, so under root it runs as the ``postgres`` system user (as
Debian's packages create it). Stopped with ``pg_ctl stop -m immediate`` on exit.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gates.errors import SubprocessError

PG_BIN_DIRS = ("/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin")


def find_pg_bin() -> Path | None:
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    for d in PG_BIN_DIRS:
        if (Path(d) / "initdb").is_file():
            return Path(d)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def local_postgres(workdir: Path) -> Iterator[str]:
    """Yield ``postgresql://gates@127.0.0.1:PORT/postgres`` for a fresh cluster under ``workdir``."""
    bindir = find_pg_bin()
    if bindir is None:
        raise FileNotFoundError("initdb (PostgreSQL server binaries) is not installed")
    as_user: list[str] = []
    if os.geteuid() == 0:
        # the postgres user cannot enter root's 0700 pytest folders: a folder of its own under /tmp
        workdir = Path(tempfile.mkdtemp(prefix="gates-pg-"))
        shutil.chown(workdir, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data = workdir / "pgdata"
    port = _free_port()

    def run(*cmd: str) -> None:
        proc = subprocess.run([*as_user, *cmd], capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise SubprocessError("PostgreSQL for tests failed", cmd, proc.returncode, proc.stdout, proc.stderr)

    run(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "gates", "--no-sync")
    opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {data} -c fsync=off"
    run(str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(data / "log"), "-w", "start")
    try:
        yield f"postgresql://gates@127.0.0.1:{port}/postgres"
    finally:
        run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        if as_user:
            shutil.rmtree(workdir, ignore_errors=True)
