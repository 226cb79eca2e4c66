"""The ledger's two databases behind one small interface: SQLite (a file) and PostgreSQL (a URL).

The ledger writes portable SQL with ``?`` placeholders; this layer adapts placeholders, column
types and transactions. Write transactions are serialized across processes in both: SQLite's
``BEGIN IMMEDIATE`` takes the database's write lock, PostgreSQL takes one transaction-scoped
advisory lock, so a read-check-write (a lock row, a promotion step) is never interleaved.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote

from gates.errors import BadInputError, CapabilityError, InfraError

ADVISORY_KEY = 0x6A7E5  # "gates": one lock for every write transaction of the ledger
EPHEMERAL_ENV = "GATES_EPHEMERAL_RUNNER"  # set on runners whose disk is gone after the job (ARC scale sets)
PG_HINT = "PostgreSQL ledgers need psycopg (a dependency of gates): pip install 'psycopg[binary]>=3.1'"


class LedgerUnavailable(InfraError):
    """The ledger is busy (locked by another writer) or unreachable: worth retrying, never a verdict."""


def transient(exc: BaseException) -> bool:
    """A database error worth retrying: locked, busy, a dropped connection (never a bad statement)."""
    if isinstance(exc, LedgerUnavailable | sqlite3.OperationalError):
        return True
    # psycopg is imported only for PostgreSQL ledgers; its OperationalError covers lost and refused
    # connections, and its subclasses too (AdminShutdown: the server restarted under us)
    psycopg = sys.modules.get("psycopg")
    return psycopg is not None and isinstance(exc, psycopg.OperationalError)


class Database(Protocol):
    dialect: str

    def execute(self, sql: str, args: tuple[Any, ...] = ()) -> Any: ...
    def begin(self) -> None: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
    def columns(self, table: str) -> set[str]: ...
    def usable(self) -> bool: ...
    def close(self) -> None: ...


class SQLiteDB:
    dialect = "sqlite"

    def __init__(self, path: str, busy_timeout_s: float = 30.0):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=busy_timeout_s)
        self._db.execute("PRAGMA journal_mode=WAL")

    def execute(self, sql: str, args: tuple[Any, ...] = ()) -> Any:
        return self._db.execute(sql, args)

    def begin(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        self._db.execute("COMMIT")

    def rollback(self) -> None:
        self._db.execute("ROLLBACK")

    def columns(self, table: str) -> set[str]:
        return {r[1] for r in self._db.execute(f"PRAGMA table_info({table})")}

    def usable(self) -> bool:
        return True  # a file: "locked" passes, the connection stays good

    def close(self) -> None:
        self._db.close()


class PostgresDB:
    dialect = "postgresql"

    def __init__(self, url: str):
        try:
            import psycopg
        except ImportError as exc:
            raise CapabilityError(PG_HINT) from exc
        try:
            self._db = psycopg.connect(url, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:  # libpq quotes a malformed URI whole, password included: scrub it
            message = f"cannot connect to the PostgreSQL ledger: {scrub(str(exc), url)}".strip()
            if isinstance(exc, psycopg.OperationalError):  # refused, down, restarting: worth retrying
                raise LedgerUnavailable(message) from None
            raise InfraError(message) from None

    @staticmethod
    def _sql(sql: str) -> str:
        sql = sql.replace("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY")
        sql = re.sub(r"\bREAL\b", "DOUBLE PRECISION", sql)
        return sql.replace("%", "%%").replace("?", "%s")

    def execute(self, sql: str, args: tuple[Any, ...] = ()) -> Any:
        return self._db.execute(self._sql(sql), args)

    def begin(self) -> None:
        self._db.execute("BEGIN")
        self._db.execute("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_KEY,))

    def commit(self) -> None:
        self._db.execute("COMMIT")

    def rollback(self) -> None:
        self._db.execute("ROLLBACK")

    def columns(self, table: str) -> set[str]:
        rows = self._db.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s", (table,)
        ).fetchall()
        return {r[0] for r in rows}

    def usable(self) -> bool:
        return not (self._db.closed or self._db.broken)  # broken: the server went away under us

    def close(self) -> None:
        self._db.close()


def connect(url: str, busy_timeout_s: float = 30.0) -> Database:
    """A file path or ``sqlite:///path`` opens SQLite; ``postgresql://…`` or a libpq conninfo string
    (``host=… dbname=…``) opens PostgreSQL.

    ``busy_timeout_s``: how long one SQLite statement waits for another writer's lock."""
    if is_postgres(url):
        return PostgresDB(url)
    path = sqlite_path(url)
    if "://" in path:
        raise BadInputError(
            f"unsupported ledger URL {redact(url)!r}: use a file path, sqlite:///path or postgresql://…"
        )
    return SQLiteDB(path, busy_timeout_s)


class Connection:
    """The ledger's one connection, opened again after it was lost (a database restart, a
    failover), with backoff: a command retrying a write, or ``gates serve``, recovers as soon as
    the database is back instead of failing on a dead socket for good."""

    MAX_BACKOFF_S = 4.0  # gates serve answers again within this of the database's return

    def __init__(self, url: str, busy_timeout_s: float, clock: Callable[[], float] = time.monotonic):
        self._url, self._busy, self._clock = url, busy_timeout_s, clock
        self._db: Database | None = connect(url, busy_timeout_s)  # the first failure is the caller's
        self._retry_at, self._backoff = 0.0, 0.0
        self.problem: str | None = None  # why there is no connection now (said by gates serve's /healthz)

    def get(self) -> Database:
        if self._db is not None:
            return self._db
        now = self._clock()
        if now < self._retry_at:
            raise LedgerUnavailable(f"{self.problem} (reconnecting in {self._retry_at - now:.1f}s)")
        try:
            self._db = connect(self._url, self._busy)
        except LedgerUnavailable as exc:
            self._backoff = min(max(0.25, self._backoff * 2), self.MAX_BACKOFF_S)
            self._retry_at, self.problem = now + self._backoff, str(exc)
            raise
        self._backoff, self.problem = 0.0, None
        return self._db

    def lost(self, why: str) -> None:
        """After a transient error: a connection that cannot be used again is dropped (re-opened on next use)."""
        if self._db is not None and not self._db.usable():
            with contextlib.suppress(Exception):
                self._db.close()
            self._db, self.problem = None, f"connection lost: {why}"

    def close(self) -> None:
        if self._db is not None:
            self._db.close()


_CONNINFO = re.compile(r"^\s*[A-Za-z_]+\s*=")  # libpq's key=value form: host=db port=5432 …
_URL_PASSWORD = re.compile(r"(?s)^([A-Za-z][A-Za-z0-9+.-]*://)([^:@/]*):(.*)@")  # greedy: to the last @
_PARAM_PASSWORD = re.compile(r"(?i)\b((?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'|[^&\s]*)")


def is_postgres(url: str) -> bool:
    return url.startswith(("postgres://", "postgresql://")) or bool(_CONNINFO.match(url))


def sqlite_path(url: str) -> str:
    return url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else url


def redact(url: str) -> str:
    """The URL (or conninfo) without its credentials, for messages: the password before the host
    (up to the last ``@``: a password may contain one) and ``password=``/``sslpassword=`` anywhere."""
    return _PARAM_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1\2:***@", url))


def secrets(url: str) -> list[str]:
    """Every credential in ``url``, as written and URL-decoded: what no message may contain."""
    found: list[str] = []
    m = _URL_PASSWORD.match(url)
    if m and m.group(3):
        found.append(m.group(3))
    found += [v.group(2).strip("'") for v in _PARAM_PASSWORD.finditer(url) if v.group(2).strip("'")]
    found += [unquote(f) for f in found]
    pieces = [piece for f in found if "@" in f for piece in f.split("@") if piece]  # libpq splits at the first @
    return sorted({*found, *pieces}, key=len, reverse=True)


def ledger_home(url: str) -> Path | None:
    """A SQLite ledger's folder (its journal is kept there too); None for PostgreSQL."""
    return None if is_postgres(url) else Path(sqlite_path(url)).resolve().parent


def identity(url: str) -> str:
    """The ledger a URL names, the same however it is spelled and without credentials: what a
    journal file records. SQLite: the file's resolved absolute path. PostgreSQL: user, host, port, database."""
    if not is_postgres(url):
        return "sqlite:///" + Path(sqlite_path(url)).resolve().as_posix()
    try:
        from psycopg.conninfo import conninfo_to_dict

        info = {k: str(v) for k, v in conninfo_to_dict(url).items()}
    except Exception:  # malformed: its redacted spelling is the best name it has
        return redact(url)
    host = info.get("host") or info.get("hostaddr") or "localhost"
    parts = (info.get("user", ""), host, info.get("port") or "5432", info.get("dbname", ""))
    if any("@" in part or part in secrets(url) for part in parts if part):  # a misparsed password
        return redact(url)
    return "postgresql://{}@{}:{}/{}".format(*parts)


def require_durable(url: str, env: Mapping[str, str]) -> None:
    """Refuse a SQLite ledger on an ephemeral runner: its file, and every record in it, dies with the runner.

    Promotions and rollbacks read what earlier runs recorded, so a ledger that silently starts
    empty on each job would let a canary be promoted without its gate run on record. For the same
    reason a SQLite ledger inside a GitHub Actions job's workspace is refused on any runner.
    """
    if is_postgres(url):
        return
    workspace = env.get("GITHUB_WORKSPACE", "") if env.get("GITHUB_ACTIONS") == "true" else ""
    if workspace and Path(sqlite_path(url)).resolve().is_relative_to(Path(workspace).resolve()):
        # on a persistent self-hosted runner actions/checkout (clean: true) wipes the workspace, and
        # every gate run, canary and promotion recorded in it
        raise BadInputError(
            f"the ledger {redact(url)!r} is a SQLite file inside the job's workspace ({workspace}), which "
            "actions/checkout cleans: set GATES_LEDGER_URL (a repository secret: postgresql://…), or "
            "GATES_LEDGER or GATES_ARTIFACTS to a folder outside the workspace"
        )
    if env.get(EPHEMERAL_ENV, "").strip().lower() not in ("1", "true", "yes"):
        return
    raise BadInputError(
        f"this runner is ephemeral ({EPHEMERAL_ENV} is set) and the ledger {redact(url)!r} is a local SQLite file "
        "that would be lost with it: set GATES_LEDGER_URL (a repository secret or variable) to a "
        "postgresql:// URL (deploy/postgres/ has a small PostgreSQL)"
    )


def scrub(message: str, url: str) -> str:
    """A driver's message about ``url`` without any of its credentials, however it was quoted."""
    message = message.replace(url, redact(url))
    for secret in secrets(url):
        if len(secret) >= 4:
            message = message.replace(secret, "***")
        else:  # a short fragment: only where it stands alone, not inside every word
            message = re.sub(rf"(?<![A-Za-z0-9]){re.escape(secret)}(?![A-Za-z0-9])", "***", message)
    return _PARAM_PASSWORD.sub(r"\1***", message)
