"""The ledger's schema as an ordered list of migrations, recorded in a ``schema_version`` table.

Migration N (1-based) runs once per database, in the same write transaction that records it, so
two runners opening a fresh PostgreSQL ledger at the same moment cannot both apply it (the
transaction holds the ledger's advisory lock). Released migrations are never edited: a change to
the schema is a new entry at the end. Ledgers written before the table existed (gates 0.1)
already have some of the tables and columns, so each step is idempotent on its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from gates.errors import InfraError
from gates.ledger.db import Database

TABLES = (
    """CREATE TABLE IF NOT EXISTS canary (
        pipeline TEXT PRIMARY KEY, target TEXT NOT NULL, endpoint TEXT, stable TEXT, canary TEXT,
        weight INTEGER NOT NULL, updated_at REAL NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS transitions (
        id INTEGER PRIMARY KEY AUTOINCREMENT, pipeline TEXT NOT NULL, at REAL NOT NULL, actor TEXT NOT NULL,
        action TEXT NOT NULL, from_state TEXT, to_state TEXT, weight INTEGER, digest TEXT, verdict TEXT,
        report TEXT, detail TEXT)""",
    """CREATE TABLE IF NOT EXISTS runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT, pipeline TEXT NOT NULL, pr INTEGER, sha TEXT, digest TEXT,
        verdict TEXT NOT NULL, report TEXT, run_dir TEXT, at REAL NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS promotions (
        pipeline TEXT PRIMARY KEY, digest TEXT, pr INTEGER, sha TEXT, state TEXT NOT NULL, step INTEGER NOT NULL,
        failures INTEGER NOT NULL, actor TEXT, updated_at REAL NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS locks (
        name TEXT PRIMARY KEY, owner TEXT NOT NULL, pid INTEGER NOT NULL, host TEXT NOT NULL,
        acquired_at REAL NOT NULL, expires_at REAL NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS deliveries (
        id TEXT PRIMARY KEY, event TEXT NOT NULL, received_at REAL NOT NULL, processed_at REAL, outcome TEXT)""",
)
VERSION_TABLE = """CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at REAL NOT NULL)"""

Migration = tuple[str, Callable[[Database], None]]


def _create_tables(db: Database) -> None:
    for stmt in TABLES:
        db.execute(stmt)


def _add_column(table: str, column: str, decl: str) -> Callable[[Database], None]:
    def step(db: Database) -> None:
        if column not in db.columns(table):  # a gates 0.1 ledger may have it already (added unversioned)
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")

    return step


MIGRATIONS: tuple[Migration, ...] = (
    ("the ledger's tables", _create_tables),
    ("canary.digest: the canary model's artifact digest", _add_column("canary", "digest", "TEXT")),
    # received | done | failed: a delivery received but not processed (a crash, a timeout) is
    # processed when it comes again, and its payload is kept so that a restart can process it
    ("deliveries.state: received, done or failed", _add_column("deliveries", "state", "TEXT")),
    ("deliveries.payload: processed again after a crash", _add_column("deliveries", "payload", "TEXT")),
    # a commit's verdict is the conjunction of its runs, one per GPU architecture of the matrix
    ("runs.arch: the GPU architecture the run measured on", _add_column("runs", "arch", "TEXT")),
    # verdicts are keyed by the pipeline file, not by the name it declares (any file can declare any name)
    ("runs.config: the pipeline file the run gated", _add_column("runs", "config", "TEXT")),
)


def current_version(db: Database) -> int:
    row = db.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def migrate(db: Database, migrations: tuple[Migration, ...] = MIGRATIONS) -> list[int]:
    """Apply the pending migrations inside the caller's write transaction; return their versions.

    A ledger newer than this gates is refused rather than written with an older idea of its schema.
    """
    db.execute(VERSION_TABLE)
    have = current_version(db)
    if have > len(migrations):
        raise InfraError(
            f"the ledger's schema is version {have}, newer than this gates knows ({len(migrations)}): upgrade gates"
        )
    applied = []
    for version, (description, step) in enumerate(migrations[have:], start=have + 1):
        step(db)
        db.execute(
            "INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
            (version, description, time.time()),
        )
        applied.append(version)
    return applied
