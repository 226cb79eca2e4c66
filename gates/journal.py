"""Records that must survive a busy or unreachable ledger: retried with a bound, then journaled.

A gate run's verdict is what a promotion checks against, so losing it to "database is locked"
would strand a PASS. Writes are retried for a bounded time; if the ledger still refuses, the
record is written atomically as one JSON file under ``<artifacts>/journal/`` and every later
command that opens the ledger (``gates run``, ``gates publish``, ``gates serve`` …) replays
the journal into it, oldest first, removing each file only once its row is committed.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from gates.errors import InfraError
from gates.ledger import Ledger
from gates.ledger.db import transient

T = TypeVar("T")
JOURNAL = "journal"


def retry(
    what: str,
    fn: Callable[[], T],
    budget_s: float = 20.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """``fn()`` retried with backoff while it fails transiently, for at most ``budget_s``; then
    InfraError naming ``what`` (never the raw driver error escaping as an internal error)."""
    deadline, delay = clock() + budget_s, 0.1
    while True:
        try:
            return fn()
        except Exception as exc:
            if not transient(exc):
                raise
            if clock() + delay > deadline:
                raise InfraError(f"ledger: {what} failed after retrying for {budget_s:.0f}s: {exc}") from exc
            sleep(delay)
            delay = min(delay * 2, 2.0)


class Journal:
    def __init__(self, artifacts_root: Path):
        self.dir = artifacts_root / JOURNAL

    def add(self, ledger: Ledger, kind: str, record: dict[str, Any]) -> Path:
        """Keep one record for ``ledger`` (written whole or not at all: temp file, fsync, rename)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        name = f"{time.time():017.6f}-{uuid.uuid4().hex[:8]}-{kind}.json"
        blob = json.dumps({"kind": kind, "ledger": ledger.url, "record": record}, sort_keys=True)
        fd, tmp = tempfile.mkstemp(prefix=".", dir=self.dir)
        with os.fdopen(fd, "w") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        target = self.dir / name
        os.replace(tmp, target)
        return target

    def pending(self, ledger: Ledger | None = None) -> list[Path]:
        if not self.dir.is_dir():
            return []
        files = sorted(p for p in self.dir.glob("*.json") if not p.name.startswith("."))
        return [p for p in files if ledger is None or _entry(p).get("ledger") == ledger.url]

    def replay(self, ledger: Ledger, progress: Callable[[str], None] = print, budget_s: float = 5.0) -> int:
        """Write every journaled record for this ledger; return how many. Stops at the first that
        still cannot be written (it stays for the next command)."""
        done = 0
        for path in self.pending(ledger):
            entry = _entry(path)
            apply = _APPLY.get(str(entry.get("kind")))
            if apply is None or not isinstance(entry.get("record"), dict):
                progress(f"journal: {path.name} is not a record gates knows; left in place")
                continue
            try:
                retry(f"replaying {path.name}", lambda: apply(ledger, entry["record"]), budget_s)  # noqa: B023
            except InfraError as exc:
                progress(f"journal: {exc}; {len(self.pending(ledger)) - done} record(s) kept for later")
                break
            path.unlink()
            done += 1
            progress(f"journal: recorded {entry['kind']} from {path.name} in the ledger")
        return done


def _entry(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _add_run(ledger: Ledger, record: dict[str, Any]) -> None:
    fields = {k: record.get(k) for k in ("pr", "sha", "digest", "report", "run_dir", "arch", "at", "config")}
    ledger.add_run(str(record["pipeline"]), str(record["verdict"]), str(record["actor"]), **fields)


_APPLY: dict[str, Callable[[Ledger, dict[str, Any]], None]] = {"run": _add_run}
