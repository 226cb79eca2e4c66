"""Records that must survive a busy or unreachable ledger: retried with a bound, then journaled.

A gate run's verdict is what a promotion checks against, so losing it to "database is locked"
would strand a PASS. Writes are retried for a bounded time; if the ledger still refuses, the
record is written atomically as one JSON file under ``journal/`` beside a SQLite ledger (else
``<artifacts>/journal/``) and every later command that opens the ledger (``gates run``,
``gates publish``, ``gates serve`` …) replays the journal into it, oldest first, removing each
file only once its row is committed.
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
QUARANTINE = "quarantine"  # under journal/: files that are not records gates can write


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
    """``<artifacts>/journal/``, and for a SQLite ledger also ``journal/`` beside the ledger file:
    a record is kept there first, so a command with another artifacts root still finds it."""

    def __init__(self, artifacts_root: Path):
        self.dir = artifacts_root / JOURNAL

    def _dirs(self, ledger: Ledger | None) -> list[Path]:
        home = ledger.home if ledger is not None else None
        beside = home / JOURNAL if home is not None else None
        if beside is None or beside.resolve() == self.dir.resolve():
            return [self.dir]
        return [beside, self.dir]

    def add(self, ledger: Ledger, kind: str, record: dict[str, Any]) -> Path:
        """Keep one record for ``ledger`` (written whole or not at all: temp file, fsync, rename)."""
        name = f"{time.time():017.6f}-{uuid.uuid4().hex[:8]}-{kind}.json"
        # the ledger's identity: no credential, and the same however a later command spells its URL
        blob = json.dumps({"kind": kind, "ledger": ledger.identity, "record": record}, sort_keys=True)
        dirs = self._dirs(ledger)
        for i, where in enumerate(dirs):
            try:
                return _write(where, name, blob)
            except OSError:
                if i == len(dirs) - 1:  # beside the ledger is not writable (a full disk): the artifacts root
                    raise
        raise AssertionError("unreachable")

    def _files(self, ledger: Ledger | None) -> list[Path]:
        files = [p for d in self._dirs(ledger) if d.is_dir() for p in d.glob("*.json") if not p.name.startswith(".")]
        return sorted(files, key=lambda p: p.name)  # names start with the time: oldest first, whichever folder

    def pending(self, ledger: Ledger | None = None) -> list[Path]:
        return [p for p in self._files(ledger) if ledger is None or _for(_entry(p), ledger)]

    def replay(self, ledger: Ledger, progress: Callable[[str], None] = print, budget_s: float = 5.0) -> int:
        """Write every journaled record for this ledger; return how many. Stops at the first that
        still cannot be written (it stays for the next command). A file that is not a record gates
        can write (not JSON, a field missing or mistyped) is moved to ``journal/quarantine/``, with
        a message naming it: one bad file never blocks the ledger commands."""
        done = 0
        for path in self._files(ledger):  # every file, malformed ones too (those are moved aside)
            entry = _entry(path)
            problem = _malformed(entry)
            if problem is None and not _for(entry, ledger):
                continue  # another ledger's record: replayed by the commands that open that one
            if problem is None:
                apply = _APPLY[entry["kind"]]
                try:
                    retry(f"replaying {path.name}", lambda: apply(ledger, entry["record"]), budget_s)  # noqa: B023
                except InfraError as exc:
                    progress(f"journal: {exc}; {len(self.pending(ledger)) - done} record(s) kept for later")
                    break
                except Exception as exc:  # refused for good (a bad value): retrying cannot help
                    problem = f"{type(exc).__name__}: {exc}"
                else:
                    path.unlink()
                    done += 1
                    progress(f"journal: recorded {entry['kind']} from {path.name} in the ledger")
                    continue
            self.quarantine(path, problem, progress)
        return done

    def quarantine(self, path: Path, problem: str, progress: Callable[[str], None]) -> Path | None:
        target = path.parent / QUARANTINE / path.name
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
        except OSError as exc:
            progress(f"journal: {path} is not a record gates can write ({problem}); could not move it aside: {exc}")
            return None
        progress(
            f"journal: {path} is not a record gates can write ({problem}); moved to {target} "
            "(not replayed: fix it and move it back, or delete it)"
        )
        return target


def _entry(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def _for(entry: dict[str, Any], ledger: Ledger) -> bool:
    """Whether a journal entry is a record for ``ledger`` (older gates wrote its redacted URL)."""
    return entry.get("ledger") in (ledger.identity, ledger.url)


def _malformed(entry: dict[str, Any]) -> str | None:
    """Why ``entry`` is not a journal record gates can replay, or None."""
    if not entry:
        return "not a JSON object"
    if not isinstance(entry.get("ledger"), str):
        return "no 'ledger'"
    if entry.get("kind") not in _APPLY:
        return f"unknown kind {str(entry.get('kind'))[:40]!r}"
    if not isinstance(entry.get("record"), dict):
        return "no 'record' object"
    return None


def _field(record: dict[str, Any], key: str, kinds: tuple[type, ...], required: bool = False) -> Any:
    value = record.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, kinds) or isinstance(value, bool):
        raise ValueError(f"record key {key!r} should be {'/'.join(k.__name__ for k in kinds)}, got {value!r:.60}")
    return value


def _add_run(ledger: Ledger, record: dict[str, Any]) -> None:
    verdict = _field(record, "verdict", (str,), required=True)
    if verdict not in ("PASS", "FAIL", "INCONCLUSIVE"):
        raise ValueError(f"record key 'verdict' should be PASS, FAIL or INCONCLUSIVE, got {verdict!r:.60}")
    text = {k: _field(record, k, (str,)) for k in ("sha", "digest", "report", "run_dir", "arch", "config")}
    ledger.add_run(
        _field(record, "pipeline", (str,), required=True),
        verdict,
        _field(record, "actor", (str,), required=True),
        pr=_field(record, "pr", (int,)),
        at=_field(record, "at", (int, float)),
        **text,
    )


_APPLY: dict[str, Callable[[Ledger, dict[str, Any]], None]] = {"run": _add_run}


def _write(where: Path, name: str, blob: str) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".", dir=where)
    with os.fdopen(fd, "w") as f:
        f.write(blob)
        f.flush()
        os.fsync(f.fileno())
    target = where / name
    os.replace(tmp, target)
    return target
