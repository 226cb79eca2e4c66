"""Durable records: canary state and every transition. SQLite by default; a URL picks PostgreSQL.

One table per concern, one row per transition: nothing is updated in place except the current
canary state, which is always derivable from the transitions (kept for cheap reads).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from gates.ledger.db import Database, LedgerUnavailable, connect, redact, scrub, transient
from gates.ledger.schema import migrate


@dataclasses.dataclass(frozen=True)
class CanaryState:
    pipeline: str
    target: str  # local | kserve
    endpoint: str | None  # router admin URL (local) or namespace/name (kserve)
    stable: str | None
    canary: str | None
    weight: int
    updated_at: float
    digest: str | None = None  # the canary model's artifact digest, when known


@dataclasses.dataclass(frozen=True)
class LedgerRun:
    id: int
    pipeline: str
    pr: int | None
    sha: str | None
    digest: str | None
    verdict: str
    report: str | None
    run_dir: str | None
    at: float


@dataclasses.dataclass(frozen=True)
class PromotionRecord:
    pipeline: str
    digest: str | None
    pr: int | None
    sha: str | None
    state: str  # canary | paused | rolling_back | stable | rolled_back
    step: int  # index of the last step that passed its re-check (-1: none yet)
    failures: int  # consecutive failed re-checks
    actor: str | None
    updated_at: float


class Ledger:
    def __init__(self, url: str, busy_timeout_s: float = 30.0):
        self.url = redact(url)  # never print a password
        self._lock = threading.Lock()  # one connection is shared by the webhook server's threads
        self._db = connect(url, busy_timeout_s)
        with self._tx() as db:
            migrate(db)  # versioned (schema_version): ledgers written by an older gates are brought up to date

    @contextlib.contextmanager
    def _tx(self) -> Iterator[Database]:
        with self._lock, self._unavailable():
            self._db.begin()
            try:
                yield self._db
                self._db.commit()
            except BaseException:
                with contextlib.suppress(Exception):  # a failed BEGIN/COMMIT leaves nothing to roll back
                    self._db.rollback()
                raise

    def _read(self, query: str, args: Sequence[Any] = ()) -> list[Any]:
        with self._lock, self._unavailable():  # one connection is shared by the webhook server's threads
            return list(self._db.execute(query, tuple(args)).fetchall())

    @contextlib.contextmanager
    def _unavailable(self) -> Iterator[None]:
        """A locked or unreachable database is an infrastructure error naming the ledger (exit 3,
        retried by callers that must not lose the record), never an internal error."""
        try:
            yield
        except LedgerUnavailable:
            raise
        except Exception as exc:
            if not transient(exc):
                raise
            raise LedgerUnavailable(f"ledger {self.url}: {type(exc).__name__}: {scrub(str(exc), self.url)}") from exc

    def canary(self, pipeline: str) -> CanaryState | None:
        rows = self._read(
            "SELECT pipeline, target, endpoint, stable, canary, weight, updated_at, digest FROM canary"
            " WHERE pipeline=?",
            (pipeline,),
        )
        return CanaryState(*rows[0]) if rows else None

    def set_canary(self, state: CanaryState, actor: str, action: str, **record: Any) -> None:
        """Write the new state and its transition record in one transaction."""
        with self._tx() as db:
            before = db.execute("SELECT weight FROM canary WHERE pipeline=?", (state.pipeline,)).fetchone()
            if record.get("digest") is None and state.digest is not None:
                record = {**record, "digest": state.digest}
            db.execute(
                "INSERT INTO canary (pipeline, target, endpoint, stable, canary, weight, updated_at, digest)"
                " VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(pipeline) DO UPDATE SET target=excluded.target,"
                " endpoint=excluded.endpoint, stable=excluded.stable, canary=excluded.canary, weight=excluded.weight,"
                " updated_at=excluded.updated_at, digest=excluded.digest",
                (
                    state.pipeline,
                    state.target,
                    state.endpoint,
                    state.stable,
                    state.canary,
                    state.weight,
                    state.updated_at,
                    state.digest,
                ),
            )
            self._insert_transition(
                db,
                state.pipeline,
                actor,
                action,
                f"weight={before[0]}" if before else None,
                f"weight={state.weight}",
                {**record, "weight": state.weight},
            )

    def record(
        self, pipeline: str, actor: str, action: str, from_state: str | None, to_state: str | None, **record: Any
    ) -> None:
        """One transition that is not a weight change (a gate run, a refusal, a promotion step)."""
        with self._tx() as db:
            self._insert_transition(db, pipeline, actor, action, from_state, to_state, record)

    @staticmethod
    def _insert_transition(
        db: Database,
        pipeline: str,
        actor: str,
        action: str,
        from_state: str | None,
        to_state: str | None,
        record: dict[str, Any],
    ) -> None:
        db.execute(
            "INSERT INTO transitions (pipeline, at, actor, action, from_state, to_state, weight, digest, verdict,"
            " report, detail) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                pipeline,
                time.time(),
                actor,
                action,
                from_state,
                to_state,
                record.get("weight"),
                record.get("digest"),
                record.get("verdict"),
                record.get("report"),
                json.dumps(record.get("detail")) if record.get("detail") else None,
            ),
        )

    # -- gate runs -------------------------------------------------------------------------
    def add_run(
        self,
        pipeline: str,
        verdict: str,
        actor: str,
        *,
        pr: int | None = None,
        sha: str | None = None,
        digest: str | None = None,
        report: str | None = None,
        run_dir: str | None = None,
    ) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO runs (pipeline, pr, sha, digest, verdict, report, run_dir, at) VALUES (?,?,?,?,?,?,?,?)",
                (pipeline, pr, sha, digest, verdict, report, run_dir, time.time()),
            )
            self._insert_transition(
                db,
                pipeline,
                actor,
                "gate_run",
                None,
                verdict,
                {"digest": digest, "verdict": verdict, "report": report, "detail": {"pr": pr, "sha": sha}},
            )

    def runs(self, pipeline: str | None = None, pr: int | None = None) -> list[LedgerRun]:
        q = "SELECT id, pipeline, pr, sha, digest, verdict, report, run_dir, at FROM runs WHERE 1=1"
        args: list[Any] = []
        if pipeline is not None:
            q, args = q + " AND pipeline=?", [*args, pipeline]
        if pr is not None:
            q, args = q + " AND pr=?", [*args, pr]
        return [LedgerRun(*r) for r in self._read(q + " ORDER BY id", args)]

    # -- promotions ------------------------------------------------------------------------
    def promotion(self, pipeline: str) -> PromotionRecord | None:
        rows = self._read(
            "SELECT pipeline, digest, pr, sha, state, step, failures, actor, updated_at FROM promotions"
            " WHERE pipeline=?",
            (pipeline,),
        )
        return PromotionRecord(*rows[0]) if rows else None

    def set_promotion(self, rec: PromotionRecord, actor: str, action: str, **record: Any) -> None:
        """The new promotion state and its transition, in one transaction (a crash keeps both or neither)."""
        with self._tx() as db:
            before = db.execute("SELECT state, step FROM promotions WHERE pipeline=?", (rec.pipeline,)).fetchone()
            db.execute(
                "INSERT INTO promotions VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT(pipeline) DO UPDATE SET"
                " digest=excluded.digest, pr=excluded.pr, sha=excluded.sha, state=excluded.state,"
                " step=excluded.step, failures=excluded.failures, actor=excluded.actor,"
                " updated_at=excluded.updated_at",
                (rec.pipeline, rec.digest, rec.pr, rec.sha, rec.state, rec.step, rec.failures, rec.actor, time.time()),
            )
            self._insert_transition(
                db,
                rec.pipeline,
                actor,
                action,
                f"{before[0]}@{before[1]}" if before else None,
                f"{rec.state}@{rec.step}",
                {"digest": rec.digest, **record},
            )

    # -- locks and deliveries --------------------------------------------------------------
    def try_lock(self, name: str, owner: str, ttl_s: float) -> tuple[bool, str]:
        """Take ``name`` unless a live holder has it; a dead or expired holder is taken over.

        Returns (taken, note): the note says whose stale lock was taken over, or who holds it.
        """
        host, pid, now = socket.gethostname(), os.getpid(), time.time()
        with self._tx() as db:
            row = db.execute("SELECT owner, pid, host, expires_at FROM locks WHERE name=?", (name,)).fetchone()
            note = ""
            if row is not None:
                holder, hpid, hhost, expires = row
                alive = expires > now and (hhost != host or _pid_alive(hpid))
                if alive and not (hhost == host and hpid == pid and holder == owner):
                    return False, f"held by {holder} (pid {hpid} on {hhost})"
                if not alive:
                    note = f"took over a stale lock of {holder} (pid {hpid} on {hhost})"
            db.execute(
                "INSERT INTO locks VALUES (?,?,?,?,?,?) ON CONFLICT(name) DO UPDATE SET owner=excluded.owner,"
                " pid=excluded.pid, host=excluded.host, acquired_at=excluded.acquired_at,"
                " expires_at=excluded.expires_at",
                (name, owner, pid, host, now, now + ttl_s),
            )
            return True, note

    def unlock(self, name: str, owner: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM locks WHERE name=? AND owner=? AND pid=?", (name, owner, os.getpid()))

    def first_delivery(self, delivery_id: str, event: str) -> bool:
        """Record a webhook delivery id; False when it was seen before (a replay or a redelivery)."""
        return self.receive_delivery(delivery_id, event, None) == "new"

    def receive_delivery(self, delivery_id: str, event: str, payload: str | None, identity: str | None = None) -> str:
        """Record a delivery before it is acted on. Returns what it is:

        ``new``; ``retry`` (seen, its processing failed: process it again); ``received`` (seen,
        not processed yet: queued, or lost to a crash); ``done`` (processed: a replay);
        ``duplicate`` (a new delivery id carrying an event, by ``identity``, that another delivery
        queued or processed already carries: the signature does not cover the delivery id)."""
        with self._tx() as db:
            row = db.execute("SELECT state, processed_at FROM deliveries WHERE id=?", (delivery_id,)).fetchone()
            if row is None:
                holder = _claim_identity(db, identity, delivery_id) if identity else None
                if holder is not None:
                    db.execute(
                        "INSERT INTO deliveries (id, event, received_at, processed_at, outcome, state)"
                        " VALUES (?,?,?,?,?,?)",
                        (delivery_id, event, time.time(), time.time(), f"duplicate of delivery {holder}"[:500], "done"),
                    )
                    return "duplicate"
                db.execute(
                    "INSERT INTO deliveries (id, event, received_at, state, payload) VALUES (?,?,?,?,?)",
                    (delivery_id, event, time.time(), "received", payload),
                )
                return "new"
            state = row[0] or ("done" if row[1] is not None else "received")  # rows of an older gates
            if state == "failed":
                db.execute("UPDATE deliveries SET state='received', payload=? WHERE id=?", (payload, delivery_id))
                return "retry"
            if state == "received" and payload is not None:
                db.execute("UPDATE deliveries SET payload=? WHERE id=? AND payload IS NULL", (payload, delivery_id))
            return str(state)

    def delivery_done(self, delivery_id: str, outcome: str, failed: bool = False) -> None:
        """Processed (``failed``: not for good; a redelivery processes it again). The payload is dropped."""
        with self._tx() as db:
            db.execute(
                "UPDATE deliveries SET processed_at=?, outcome=?, state=?, payload=NULL WHERE id=?",
                (time.time(), outcome[:500], "failed" if failed else "done", delivery_id),
            )

    def unprocessed_deliveries(self) -> list[tuple[str, str, str]]:
        """(id, event, payload) of deliveries received but never processed, oldest first."""
        rows = self._read(
            "SELECT id, event, payload FROM deliveries WHERE state='received' AND payload IS NOT NULL"
            " ORDER BY received_at, id"
        )
        return [(str(r[0]), str(r[1]), str(r[2])) for r in rows]

    def deliveries(self) -> list[tuple[str, str, float | None, str | None]]:
        return [
            tuple(r)
            for r in self._read(
                "SELECT id, event, processed_at, outcome FROM deliveries WHERE state IS NULL OR state != 'identity'"
                " ORDER BY received_at, id"
            )
        ]

    def history(self, pipeline: str | None = None) -> list[dict[str, Any]]:
        q = (
            "SELECT id, pipeline, at, actor, action, from_state, to_state, weight, digest, verdict, report, detail"
            " FROM transitions"
        )
        rows = self._read(
            q + (" WHERE pipeline=? ORDER BY id" if pipeline else " ORDER BY id"), (pipeline,) if pipeline else ()
        )
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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (killed, not yet reaped by its parent) holds nothing
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _claim_identity(db: Any, identity: str, delivery_id: str) -> str | None:
    """The delivery already carrying event ``identity`` (queued or processed), else None and
    ``delivery_id`` carries it now. Kept as a row of ``deliveries`` (state ``identity``, the
    holder in ``outcome``): no schema change. A failed holder's event is taken over."""
    alias = f"event:{identity}"[:128]
    row = db.execute("SELECT outcome FROM deliveries WHERE id=?", (alias,)).fetchone()
    if row is None:
        db.execute(
            "INSERT INTO deliveries (id, event, received_at, outcome, state) VALUES (?,?,?,?,?)",
            (alias, "(event identity)", time.time(), delivery_id, "identity"),
        )
        return None
    holder = db.execute("SELECT state FROM deliveries WHERE id=?", (row[0],)).fetchone()
    if holder is not None and holder[0] != "failed":
        return str(row[0])
    db.execute("UPDATE deliveries SET outcome=? WHERE id=?", (delivery_id, alias))
    return None
