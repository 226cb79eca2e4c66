"""PostgreSQL restarts under a gate run and under `gates serve` (issue 27 items 9 and 12, the fault matrix).

A real local PostgreSQL is restarted (``pg_ctl stop -m fast``: connected clients get AdminShutdown,
as in a restart or failover) while a run is at its load stage, at its drift stage, or recording its
verdict. The stages are stand-ins that only restart the database (no model work); the judge is a
stand-in that passes, so what is at stake is a PASS. Every time the run must be recorded, or
journaled and recorded by the next command; `gates serve` must answer again within 30 s.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import gates.pipeline
from gates.config import load_pipeline
from gates.context import RunContext
from gates.errors import ExitCode
from gates.judge.verdict import PASS, Verdict
from gates.ledger import Ledger
from gates.testing.postgres import LocalPostgres, find_pg_bin, postgres_cluster

pytestmark = pytest.mark.skipif(find_pg_bin() is None, reason="PostgreSQL server binaries are not installed here")
CFG = "name: unit\nmodel:\n  source: builtin:tiny-llama\ngolden:\n  suites: [golden_prompts/demo.jsonl]\n"
SHA = "a" * 40


@pytest.fixture(scope="module")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPostgres]:
    with postgres_cluster(tmp_path_factory.mktemp("pgfaults")) as cluster:
        yield cluster


@pytest.fixture()
def url(pg: LocalPostgres) -> Iterator[str]:
    import psycopg

    name = f"l_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg.url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield pg.url.rsplit("/", 1)[0] + f"/{name}"
    try:  # a test that failed midway may have left the server stopped: the next one needs it
        with psycopg.connect(pg.url, connect_timeout=2):
            pass
    except psycopg.OperationalError:
        pg.start()


class Stage:
    """A measurement stage that only runs ``hook`` (a database restart) while the run is at it."""

    def __init__(self, name: str, hook: Callable[[], None] | None = None):
        self.name, self.hook = name, hook

    def run(self, ctx: RunContext) -> None:
        if self.hook is not None:
            self.hook()


class PassingJudge:
    name = "judge"

    def run(self, ctx: RunContext) -> None:
        ctx.put(Verdict(PASS, "pass (stand-in judge)", ()))


def restart_later(pg: LocalPostgres, after_s: float) -> threading.Thread:
    """The database comes back ``after_s`` from now (the record is attempted while it is down)."""
    thread = threading.Thread(target=lambda: (time.sleep(after_s), pg.start()))
    thread.start()
    return thread


@pytest.mark.parametrize("at", ["load", "drift", "record"])
def test_a_database_restart_during_a_run_loses_no_pass(
    pg: LocalPostgres, url: str, at: str, write_pipeline: Callable[..., Path], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from gates.promotion.gate import gate_commit

    monkeypatch.setattr(gates.pipeline, "JudgeStage", PassingJudge)
    ledger = Ledger(url)
    assert ledger.runs() == []  # the run's connection is open and has been used
    comes_back: list[threading.Thread] = []

    def down_until_record() -> None:  # stopped now, back while record_run is retrying
        pg.stop()
        comes_back.append(restart_later(pg, 1.5))

    hooks = {"load": pg.restart, "drift": pg.restart, "record": down_until_record}
    stages = (
        Stage("load", hooks["load"] if at == "load" else None),
        Stage("drift", hooks[at] if at != "load" else None),
    )
    lines: list[str] = []
    pf = load_pipeline(write_pipeline(CFG))
    outcome = gate_commit(pf, tmp_path / "art", ledger, "ci", 3, SHA, {"GATES_GPU_ARCH": "h100"}, lines.append,
                          tmp_path / "run", stages)  # fmt: skip
    for thread in comes_back:
        thread.join()
    assert outcome.verdict == PASS and outcome.exit_code == ExitCode.PASS, lines
    runs = Ledger(url).runs("unit")
    assert [(r.verdict, r.sha, r.arch) for r in runs] == [(PASS, SHA, "h100")]
    assert not (tmp_path / "art" / "journal").exists() or not list((tmp_path / "art" / "journal").glob("*.json"))


def test_a_database_down_past_the_retry_budget_journals_the_pass_and_the_next_command_records_it(
    pg: LocalPostgres, url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gates.cli.common import open_ledger
    from gates.journal import Journal
    from gates.pipeline import RunOutcome
    from gates.promotion.gate import record_run

    ledger = Ledger(url)
    outcome = RunOutcome("r1", PASS, "ok", ExitCode.PASS, tmp_path, None, None, "d" * 64)
    pg.stop()
    try:
        lines: list[str] = []
        kept = record_run(ledger, "unit", outcome, "ci", 3, SHA, Journal(tmp_path / "art"), lines.append, budget_s=1.0)
        assert not kept and "kept in" in lines[-1] and "internal error" not in lines[-1]
        (entry,) = Journal(tmp_path / "art").pending()
    finally:
        pg.start()
    assert [r.verdict for r in open_ledger(url, tmp_path / "art").runs("unit")] == [PASS] and not entry.exists()


SECRET = b"s3cret-for-tests"


def _call(url: str, body: bytes | None = None, delivery: str = "") -> tuple[int, Any]:
    from gates.events.webhook import signature

    headers = {"Content-Type": "application/json"}
    if body is not None:
        sig = signature(SECRET, body)
        headers |= {"X-GitHub-Event": "ping", "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": sig}
    req = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_serve_says_what_is_wrong_and_recovers_after_a_database_restart(pg: LocalPostgres, url: str) -> None:
    from gates.events.webhook import WebhookServer

    ledger = Ledger(url)
    # distinct events: the same body under a new delivery id is a duplicate (409), deduplicated on the event
    body = b'{"zen": "Keep it logically awesome.", "hook_id": 1}'
    with WebhookServer(SECRET, ledger, lambda d: "ok", ledger_timeout_s=5.0) as server:
        assert _call(server.url + "/healthz") == (200, {"message": "ok"})
        assert _call(server.url + "/", body.replace(b"1}", b"0}"), "d0")[0] == 202
        pg.stop()
        try:
            status, reply = _call(server.url + "/healthz")
            assert status == 503 and "ledger postgresql://gates@127.0.0.1" in reply["message"], reply
            assert _call(server.url + "/", body.replace(b"1}", b"2}"), "d1")[0] == 503
        finally:
            pg.start()
        back = time.monotonic()
        deadline = back + 30.0  # the bound: recovered within 30 s of the database
        while _call(server.url + "/", body, "d2")[0] != 202:
            assert time.monotonic() < deadline, "gates serve did not recover within 30 s of the database"
            time.sleep(0.25)
        print(f"serve_recovery_s={time.monotonic() - back:.2f}")
        assert _call(server.url + "/healthz") == (200, {"message": "ok"})


def test_reconnects_back_off_and_say_why(pg: LocalPostgres, url: str) -> None:
    """While the database is down, tries are spaced (0.25 s doubling, at most 4 s) and each refusal says why."""
    from gates.ledger.db import Connection, LedgerUnavailable

    now = [0.0]
    conn = Connection(url, 5.0, clock=lambda: now[0])
    pg.stop()
    try:
        with pytest.raises(Exception):  # noqa: B017 - the dead socket's own error (AdminShutdown or closed)
            conn.get().execute("SELECT 1")
        conn.lost("terminated")
        tries = []
        for i in range(8):
            now[0] += 5.0 if i else 0.0  # past any backoff: this get tries again
            with pytest.raises(LedgerUnavailable) as err:
                conn.get()
            tries.append(str(err.value))
        assert all("Connection refused" in t or "cannot connect" in t for t in tries)
        with pytest.raises(LedgerUnavailable, match=r"reconnecting in 4\.0s"):
            conn.get()  # no time has passed: not tried again, said so
    finally:
        pg.start()
    now[0] += 5.0
    assert conn.get().execute("SELECT 1").fetchone()[0] == 1 and conn.problem is None
