"""The ledger's two databases behind one small interface: SQLite (a file) and PostgreSQL (a URL).

The ledger writes portable SQL with ``?`` placeholders; this layer adapts placeholders, column
types and transactions. Write transactions are serialized across processes in both: SQLite's
``BEGIN IMMEDIATE`` takes the database's write lock, PostgreSQL takes one transaction-scoped
advisory lock, so a read-check-write (a lock row, a promotion step) is never interleaved.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

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
    # psycopg is optional at import time; its OperationalError covers lost and refused connections
    return type(exc).__name__ == "OperationalError" and type(exc).__module__.startswith("psycopg")


class Database(Protocol):
    dialect: str

    def execute(self, sql: str, args: tuple[Any, ...] = ()) -> Any: ...
    def begin(self) -> None: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
    def columns(self, table: str) -> set[str]: ...
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
            raise InfraError(f"cannot connect to the PostgreSQL ledger: {scrub(str(exc), url)}".strip()) from None

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

    def close(self) -> None:
        self._db.close()


def connect(url: str, busy_timeout_s: float = 30.0) -> Database:
    """A file path or ``sqlite:///path`` opens SQLite; ``postgresql://…`` opens PostgreSQL.

    ``busy_timeout_s``: how long one SQLite statement waits for another writer's lock."""
    if url.startswith(("postgres://", "postgresql://")):
        return PostgresDB(url)
    path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else url
    if "://" in path:
        raise BadInputError(
            f"unsupported ledger URL {redact(url)!r}: use a file path, sqlite:///path or postgresql://…"
        )
    return SQLiteDB(path, busy_timeout_s)


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def require_durable(url: str, env: Mapping[str, str]) -> None:
    """Refuse a SQLite ledger on an ephemeral runner: its file, and every record in it, dies with the runner.

    Promotions and rollbacks read what earlier runs recorded, so a ledger that silently starts
    empty on each job would let a canary be promoted without its gate run on record.
    """
    if env.get(EPHEMERAL_ENV, "").strip().lower() not in ("1", "true", "yes"):
        return
    if url.startswith(("postgres://", "postgresql://")):
        return
    raise BadInputError(
        f"this runner is ephemeral ({EPHEMERAL_ENV} is set) and the ledger {redact(url)!r} is a local SQLite file "
        "that would be lost with it: set GATES_LEDGER_URL (a repository secret or variable) to a "
        "postgresql:// URL (deploy/postgres/ has a small PostgreSQL)"
    )


def scrub(message: str, url: str) -> str:
    """A driver's message about ``url`` without the URL's password, however it was quoted."""
    password = re.match(r"^[a-z+]+://[^:/@]*:([^@]*)@", url)
    message = message.replace(url, redact(url))
    if password and password.group(1):
        message = message.replace(password.group(1), "***")
    return re.sub(r"(?i)(password\s*=\s*)\S+", r"\1***", message)
