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

from gates.errors import InfraError
from gates.ledger.db import Connection, Database, LedgerUnavailable, identity, ledger_home, redact, scrub, transient
from gates.ledger.deliveries import receive
from gates.ledger.locks import pid_alive
from gates.ledger.schema import migrate
from gates.ledger.states import PromotionState

ANY_STATE = object()  # set_promotion without a check of what it replaces


class PromotionConflict(InfraError):
    """The promotion's recorded state is not what a transition was decided on: someone else moved it."""


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
    arch: str | None = None  # the GPU architecture (matrix entry) the run measured on
    config: str | None = None  # the pipeline file it gated (repository-relative): what promotion matches


@dataclasses.dataclass(frozen=True)
class PromotionRecord:
    pipeline: str
    digest: str | None
    pr: int | None
    sha: str | None
    state: PromotionState
    step: int  # index of the last step that passed its re-check (-1: none yet)
    failures: int  # consecutive failed re-checks
    actor: str | None
    updated_at: float


class Ledger:
    def __init__(self, url: str, busy_timeout_s: float = 30.0):
        self.url = redact(url)  # never print a password
        self.identity = identity(url)  # the same ledger however it is spelled, without credentials
        self._secret_url = url  # for scrubbing driver messages (and reconnecting): never printed
        # a SQLite ledger's folder: its journal is kept there too, found whatever a command's artifacts root
        self.home = ledger_home(url)
        self._lock = threading.Lock()  # one connection is shared by the webhook server's threads
        self._conn = Connection(url, busy_timeout_s)  # re-opened after a database restart
        with self._tx() as db:
            migrate(db)  # versioned (schema_version): ledgers written by an older gates are brought up to date

    @contextlib.contextmanager
    def _tx(self) -> Iterator[Database]:
        with self._lock, self._unavailable():
            db = self._conn.get()
            db.begin()
            try:
                yield db
                db.commit()
            except BaseException:
                with contextlib.suppress(Exception):  # a failed BEGIN/COMMIT leaves nothing to roll back
                    db.rollback()
                raise

    def _read(self, query: str, args: Sequence[Any] = ()) -> list[Any]:
        with self._lock, self._unavailable():  # one connection is shared by the webhook server's threads
            return list(self._conn.get().execute(query, tuple(args)).fetchall())

    def check(self) -> None:
        """Raise LedgerUnavailable saying what is wrong unless the ledger answers (a health check)."""
        self._read("SELECT 1")

    @contextlib.contextmanager
    def _unavailable(self) -> Iterator[None]:
        """A locked or unreachable database is an infrastructure error naming the ledger (exit 3,
        retried by callers that must not lose the record), never an internal error."""
        try:
            yield
        except LedgerUnavailable as exc:
            if str(exc).startswith(f"ledger {self.url}"):
                raise
            raise LedgerUnavailable(f"ledger {self.url}: {exc}") from exc  # a reconnect failed: name the ledger
        except Exception as exc:
            if not transient(exc):
                raise
            why = scrub(str(exc), self._secret_url)
            self._conn.lost(why)
            raise LedgerUnavailable(f"ledger {self.url}: {type(exc).__name__}: {why}") from exc

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
        at: float | None = None,
    ) -> None:
        db.execute(
            "INSERT INTO transitions (pipeline, at, actor, action, from_state, to_state, weight, digest, verdict,"
            " report, detail) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                pipeline,
                time.time() if at is None else at,
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
        arch: str | None = None,
        at: float | None = None,
        config: str | None = None,
    ) -> None:
        """``at``: when the run was decided (a journaled run replayed later keeps its own time);
        ``config``: the pipeline file it gated."""
        at = time.time() if at is None else float(at)
        with self._tx() as db:
            db.execute(
                "INSERT INTO runs (pipeline, pr, sha, digest, verdict, report, run_dir, at, arch, config)"
                " VALUES (?,?,?,?,?,?,?,?,?,?)",
                (pipeline, pr, sha, digest, verdict, report, run_dir, at, arch, config),
            )
            detail = {"pr": pr, "sha": sha, "arch": arch, "config": config}
            self._insert_transition(
                db,
                pipeline,
                actor,
                "gate_run",
                None,
                verdict,
                {"digest": digest, "verdict": verdict, "report": report, "detail": detail},
                at,
            )

    def runs(self, pipeline: str | None = None, pr: int | None = None) -> list[LedgerRun]:
        q = "SELECT id, pipeline, pr, sha, digest, verdict, report, run_dir, at, arch, config FROM runs WHERE 1=1"
        args: list[Any] = []
        if pipeline is not None:
            q, args = q + " AND pipeline=?", [*args, pipeline]
        if pr is not None:
            q, args = q + " AND pr=?", [*args, pr]
        # in the order they were decided: a journaled run replayed late is not the newest
        return [LedgerRun(*r) for r in self._read(q + " ORDER BY at, id", args)]

    # -- promotions ------------------------------------------------------------------------
    def promotion(self, pipeline: str) -> PromotionRecord | None:
        rows = self._read(
            "SELECT pipeline, digest, pr, sha, state, step, failures, actor, updated_at FROM promotions"
            " WHERE pipeline=?",
            (pipeline,),
        )
        if not rows:
            return None
        r = rows[0]
        return PromotionRecord(r[0], r[1], r[2], r[3], PromotionState(r[4]), r[5], r[6], r[7], r[8])

    def set_promotion(
        self, rec: PromotionRecord, actor: str, action: str, expect: object = ANY_STATE, **record: Any
    ) -> None:
        """The new promotion state and its transition, in one transaction (a crash keeps both or neither).

        ``expect``: the record (or None: no promotion) the caller's decision was based on; when the
        ledger holds another state now (a rollback recorded meanwhile), PromotionConflict and nothing written."""
        with self._tx() as db:
            before = db.execute(
                "SELECT state, step, digest FROM promotions WHERE pipeline=?", (rec.pipeline,)
            ).fetchone()
            if expect is not ANY_STATE:
                want = (expect.state, expect.step, expect.digest) if isinstance(expect, PromotionRecord) else None
                have = tuple(before) if before else None
                if want != have:
                    now = f"{have[0]}@{have[1]}" if have else "none"
                    raise PromotionConflict(f"{rec.pipeline}: the promotion changed under this one (it is now {now})")
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
        """Take ``name`` unless a live holder has it; only a dead holder's lock is taken over.

        A holder renews its lock while it runs (``renew_lock``), so on another host a lock past its
        expiry has no live holder; on this host the process table says whether the holder lives
        (a live one keeps its lock however long its step takes).
        Returns (taken, note): the note says whose dead lock was taken over, or who holds it.
        """
        host, pid, now = socket.gethostname(), os.getpid(), time.time()
        with self._tx() as db:
            row = db.execute("SELECT owner, pid, host, expires_at FROM locks WHERE name=?", (name,)).fetchone()
            note = ""
            if row is not None:
                holder, hpid, hhost, expires = row
                alive = pid_alive(hpid) if hhost == host else expires > now
                if alive and not (hhost == host and hpid == pid and holder == owner):
                    return False, f"held by {holder} (pid {hpid} on {hhost})"
                if not alive:
                    note = f"took over the lock of {holder}, no longer running (pid {hpid} on {hhost})"
            db.execute(
                "INSERT INTO locks VALUES (?,?,?,?,?,?) ON CONFLICT(name) DO UPDATE SET owner=excluded.owner,"
                " pid=excluded.pid, host=excluded.host, acquired_at=excluded.acquired_at,"
                " expires_at=excluded.expires_at",
                (name, owner, pid, host, now, now + ttl_s),
            )
            return True, note

    def renew_lock(self, name: str, owner: str, ttl_s: float) -> bool:
        """The holder's heartbeat: push its lock's expiry on. False when it is not held by ``owner`` any more."""
        with self._tx() as db:
            cur = db.execute(
                "UPDATE locks SET expires_at=? WHERE name=? AND owner=? AND pid=?",
                (time.time() + ttl_s, name, owner, os.getpid()),
            )
            return bool(cur.rowcount == 1)

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
            return receive(db, delivery_id, event, payload, identity)

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
            q + (" WHERE pipeline=?" if pipeline else "") + " ORDER BY at, id", (pipeline,) if pipeline else ()
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
        self._conn.close()
