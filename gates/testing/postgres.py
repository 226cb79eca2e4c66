"""A throwaway PostgreSQL server for tests: initdb in a temporary folder, on 127.0.0.1, a free port.

PostgreSQL refuses to run as root, so under root it runs as the ``postgres`` system user (as
Debian's packages create it). Stopped with ``pg_ctl stop -m immediate`` on exit.
"""

from __future__ import annotations

import contextlib
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


class LocalPostgres:
    """A running test cluster that a test can stop, start and restart (a database restart mid-run)."""

    def __init__(self, bindir: Path, data: Path, port: int, as_user: list[str]):
        self.bindir, self.data, self.port, self._as_user = bindir, data, port, as_user
        self.url = f"postgresql://gates@127.0.0.1:{port}/postgres"

    def _run(self, *cmd: str) -> None:
        proc = subprocess.run([*self._as_user, *cmd], capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise SubprocessError("PostgreSQL for tests failed", cmd, proc.returncode, proc.stdout, proc.stderr)

    def start(self) -> None:
        opts = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.data} -c fsync=off"
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", opts, "-l", str(self.data / "log"), "-w",
                  "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """``fast``: connected clients get AdminShutdown (what a restart or failover does to them)."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self) -> None:
        self.stop()
        self.start()


@contextmanager
def postgres_cluster(workdir: Path) -> Iterator[LocalPostgres]:
    """A fresh cluster under ``workdir`` on 127.0.0.1, a free port; stopped (immediately) on exit."""
    bindir = find_pg_bin()
    if bindir is None:
        raise FileNotFoundError("initdb (PostgreSQL server binaries) is not installed")
    as_user: list[str] = []
    if os.geteuid() == 0:
        # the postgres user cannot enter root's 0700 pytest folders: a folder of its own under /tmp
        workdir = Path(tempfile.mkdtemp(prefix="gates-pg-"))
        shutil.chown(workdir, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    pg = LocalPostgres(bindir, workdir / "pgdata", _free_port(), as_user)
    pg._run(str(bindir / "initdb"), "-D", str(pg.data), "-A", "trust", "-U", "gates", "--no-sync")
    pg.start()
    try:
        yield pg
    finally:
        with contextlib.suppress(SubprocessError):  # a test may have left it stopped
            pg.stop("immediate")
        if as_user:
            shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def local_postgres(workdir: Path) -> Iterator[str]:
    """Yield ``postgresql://gates@127.0.0.1:PORT/postgres`` for a fresh cluster under ``workdir``."""
    with postgres_cluster(workdir) as pg:
        yield pg.url
