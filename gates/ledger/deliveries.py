"""Webhook deliveries deduplicated on the event's own identity, not only GitHub's delivery id."""

from __future__ import annotations

import time
from typing import Any


def claim_identity(db: Any, identity: str, delivery_id: str) -> str | None:
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


def receive(db: Any, delivery_id: str, event: str, payload: str | None, identity: str | None) -> str:
    """What a delivery is (see :meth:`gates.ledger.Ledger.receive_delivery`), recorded in ``db``'s transaction."""
    row = db.execute("SELECT state, processed_at FROM deliveries WHERE id=?", (delivery_id,)).fetchone()
    if row is None:
        holder = claim_identity(db, identity, delivery_id) if identity else None
        if holder is not None:
            db.execute(
                "INSERT INTO deliveries (id, event, received_at, processed_at, outcome, state) VALUES (?,?,?,?,?,?)",
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
