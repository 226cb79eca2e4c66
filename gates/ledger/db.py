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
    empty on each job would let a canary be promoted without its gate run on record.
    """
    if env.get(EPHEMERAL_ENV, "").strip().lower() not in ("1", "true", "yes"):
        return
    if is_postgres(url):
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
