"""Durable records: canary state and every transition. SQLite by default; a URL picks PostgreSQL.

One table per concern, one row per transition: nothing is updated in place except the current
canary state, which is always derivable from the transitions (kept for cheap reads).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gates.errors import BadInputError, CapabilityError

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS canary (
        pipeline TEXT PRIMARY KEY, target TEXT NOT NULL, endpoint TEXT, stable TEXT, canary TEXT,
        weight INTEGER NOT NULL, updated_at REAL NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS transitions (
        id INTEGER PRIMARY KEY AUTOINCREMENT, pipeline TEXT NOT NULL, at REAL NOT NULL, actor TEXT NOT NULL,
        action TEXT NOT NULL, from_state TEXT, to_state TEXT, weight INTEGER, digest TEXT, verdict TEXT,
        report TEXT, detail TEXT)""",
)


@dataclasses.dataclass(frozen=True)
class CanaryState:
    pipeline: str
    target: str  # local | kserve
    endpoint: str | None  # router admin URL (local) or namespace/name (kserve)
    stable: str | None
    canary: str | None
    weight: int
    updated_at: float


class Ledger:
    def __init__(self, url: str):
        self.url = url
        self._lock = threading.Lock()
        if url.startswith(("postgres://", "postgresql://")):
            raise CapabilityError("PostgreSQL ledgers need the psycopg driver, which this version does not ship yet")
        path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else url
        if "://" in path:
            raise BadInputError(f"unsupported ledger URL {url!r}: use a file path, sqlite:///path or postgresql://…")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        for stmt in SCHEMA:
            self._db.execute(stmt)

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def canary(self, pipeline: str) -> CanaryState | None:
        row = self._db.execute(
            "SELECT pipeline, target, endpoint, stable, canary, weight, updated_at FROM canary WHERE pipeline=?",
            (pipeline,),
        ).fetchone()
        return CanaryState(*row) if row else None

    def set_canary(self, state: CanaryState, actor: str, action: str, **record: Any) -> None:
        """Write the new state and its transition record in one transaction."""
        with self._tx() as db:
            before = db.execute("SELECT weight FROM canary WHERE pipeline=?", (state.pipeline,)).fetchone()
            db.execute(
                "INSERT INTO canary VALUES (?,?,?,?,?,?,?) ON CONFLICT(pipeline) DO UPDATE SET target=excluded.target,"
                " endpoint=excluded.endpoint, stable=excluded.stable, canary=excluded.canary, weight=excluded.weight,"
                " updated_at=excluded.updated_at",
                (
                    state.pipeline,
                    state.target,
                    state.endpoint,
                    state.stable,
                    state.canary,
                    state.weight,
                    state.updated_at,
                ),
            )
            db.execute(
                "INSERT INTO transitions (pipeline, at, actor, action, from_state, to_state, weight, digest, verdict,"
                " report, detail) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    state.pipeline,
                    time.time(),
                    actor,
                    action,
                    f"weight={before[0]}" if before else None,
                    f"weight={state.weight}",
                    state.weight,
                    record.get("digest"),
                    record.get("verdict"),
                    record.get("report"),
                    json.dumps(record.get("detail")) if record.get("detail") else None,
                ),
            )

    def history(self, pipeline: str | None = None) -> list[dict[str, Any]]:
        q = (
            "SELECT id, pipeline, at, actor, action, from_state, to_state, weight, digest, verdict, report, detail"
            " FROM transitions"
        )
        rows = self._db.execute(
            q + (" WHERE pipeline=? ORDER BY id" if pipeline else " ORDER BY id"), (pipeline,) if pipeline else ()
        ).fetchall()
        keys = (
            "id",
            "pipeline",
            "at",
            "actor",
            "action",
            "from",
            "to",
            "weight",
            "digest",
            "verdict",
            "report",
            "detail",
        )
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def close(self) -> None:
        self._db.close()
