"""The ledger on SQLite and PostgreSQL: records, de-duplication, old ledgers, URLs."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from gates.errors import BadInputError, InfraError
from gates.ledger import CanaryState, Ledger, PromotionRecord


def test_records_round_trip(ledger_url: str) -> None:
    led = Ledger(ledger_url)
    led.add_run("p", "PASS", "ci", pr=3, sha="a" * 40, digest="d" * 64, report="r.md", run_dir="/runs/1")
    led.set_canary(CanaryState("p", "local", "127.0.0.1:1", "s", "c", 10, time.time(), "d" * 64), "bob", "set")
    led.set_promotion(PromotionRecord("p", "d" * 64, 3, "a" * 40, "canary", 0, 0, "bob", 0), "bob", "step_passed")
    again = Ledger(ledger_url)  # a second connection (another process) sees all of it
    assert again.runs("p", pr=3)[0].verdict == "PASS" and again.runs(pr=4) == []
    assert again.canary("p").digest == "d" * 64  # type: ignore[union-attr]
    assert again.promotion("p").state == "canary"  # type: ignore[union-attr]
    hist = again.history("p")
    assert [h["action"] for h in hist] == ["gate_run", "set", "step_passed"]
    assert hist[1]["to"] == "weight=10" and hist[2]["to"] == "canary@0" and hist[2]["digest"] == "d" * 64


def test_deliveries_are_recorded_once(ledger_url: str) -> None:
    led, other = Ledger(ledger_url), Ledger(ledger_url)
    assert led.first_delivery("abc", "push") and not other.first_delivery("abc", "push")
    led.delivery_done("abc", "exit 0")
    assert other.deliveries() == [("abc", "push", pytest.approx(time.time(), abs=60), "exit 0")]


def test_an_older_sqlite_ledger_gains_the_new_column(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:  # the canary table as gates 0.1 (session 1) wrote it
        db.execute(
            "CREATE TABLE canary (pipeline TEXT PRIMARY KEY, target TEXT NOT NULL, endpoint TEXT, stable TEXT,"
            " canary TEXT, weight INTEGER NOT NULL, updated_at REAL NOT NULL)"
        )
        db.execute("INSERT INTO canary VALUES ('p', 'local', 'x', 's', 'c', 20, 1.0)")
    state = Ledger(str(path)).canary("p")
    assert state is not None and state.weight == 20 and state.digest is None


def test_bad_urls_are_clear_and_never_show_passwords() -> None:
    with pytest.raises(BadInputError, match="unsupported ledger URL 'mysql://u:\\*\\*\\*@h/db'"):
        Ledger("mysql://u:hunter2@h/db")
    with pytest.raises(InfraError) as err:
        Ledger("postgresql://gates:hunter2@127.0.0.1:1/none")
    assert "hunter2" not in str(err.value) and "cannot connect to the PostgreSQL ledger" in str(err.value)


def test_schema_versions_are_recorded_once_and_an_old_ledger_is_brought_up_to_date(tmp_path: Path) -> None:
    from gates.ledger.schema import MIGRATIONS

    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:  # gates 0.1 had the digest column added unversioned, and no schema_version
        db.execute(
            "CREATE TABLE canary (pipeline TEXT PRIMARY KEY, target TEXT NOT NULL, endpoint TEXT, stable TEXT,"
            " canary TEXT, weight INTEGER NOT NULL, updated_at REAL NOT NULL, digest TEXT)"
        )
    Ledger(str(path)).close()
    Ledger(str(path)).close()  # a second open applies nothing
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT version, description FROM schema_version ORDER BY version").fetchall()
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert [r[0] for r in rows] == list(range(1, len(MIGRATIONS) + 1))
    assert rows[1][1].startswith("canary.digest")
    assert {"canary", "transitions", "runs", "promotions", "locks", "deliveries"} <= tables


def test_a_new_migration_runs_once_and_a_newer_ledger_is_refused(ledger_url: str) -> None:
    from gates.ledger.db import connect
    from gates.ledger.schema import MIGRATIONS, current_version, migrate

    Ledger(ledger_url).close()
    extra = (*MIGRATIONS, ("runs.host", lambda db: db.execute("ALTER TABLE runs ADD COLUMN host TEXT")))
    db = connect(ledger_url)
    try:
        db.begin()
        assert migrate(db, extra) == [len(extra)]
        assert migrate(db, extra) == []  # the ALTER would fail if it ran twice
        db.commit()
        assert current_version(db) == len(extra) and "host" in db.columns("runs")
    finally:
        db.close()
    with pytest.raises(InfraError, match=f"schema is version {len(extra)}, newer than this gates knows"):
        Ledger(ledger_url)


def test_an_ephemeral_runner_refuses_a_sqlite_ledger_and_accepts_postgresql(tmp_path: Path) -> None:
    from gates.ledger.db import require_durable

    require_durable(str(tmp_path / "l.sqlite"), {})  # a persistent runner keeps its file
    require_durable("postgresql://gates:pw@db/gates", {"GATES_EPHEMERAL_RUNNER": "1"})
    with pytest.raises(BadInputError, match=r"ephemeral.*set GATES_LEDGER_URL") as err:
        require_durable("sqlite:///x/l.sqlite", {"GATES_EPHEMERAL_RUNNER": "true"})
    assert "x/l.sqlite" in str(err.value)


def test_the_cli_refuses_before_opening_a_ledger_on_an_ephemeral_runner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from gates.cli.main import main

    monkeypatch.setenv("GATES_EPHEMERAL_RUNNER", "1")
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    with pytest.raises(SystemExit) as exit_:
        main(["history", "--ledger", str(tmp_path / "l.sqlite")])
    assert exit_.value.code == 2 and "set GATES_LEDGER_URL" in capsys.readouterr().err
    assert not (tmp_path / "l.sqlite").exists()


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://gates:hunter2@[::1:5432/db",  # libpq quotes a malformed URI whole
        "postgresql://gates:hunter2@127.0.0.1:5432/db?sslmode=hunter2x",
        "postgresql://gates:hunter2@127.0.0.1:notaport/db",
    ],
)
def test_a_malformed_ledger_url_never_shows_its_password(url: str) -> None:
    with pytest.raises(InfraError) as err:
        Ledger(url)
    assert "hunter2" not in str(err.value) and "cannot connect to the PostgreSQL ledger" in str(err.value)


def test_a_delivery_is_received_then_done_or_failed(ledger_url: str) -> None:
    led = Ledger(ledger_url)
    assert led.receive_delivery("d1", "push", '{"a": 1}') == "new"
    assert led.receive_delivery("d1", "push", '{"a": 1}') == "received"  # not processed yet: redelivery runs it
    assert led.unprocessed_deliveries() == [("d1", "push", '{"a": 1}')]
    led.delivery_done("d1", "failed: timeout", failed=True)
    assert led.receive_delivery("d1", "push", '{"a": 1}') == "retry" and led.unprocessed_deliveries()
    led.delivery_done("d1", "exit 0")
    assert led.receive_delivery("d1", "push", '{"a": 1}') == "done" and led.unprocessed_deliveries() == []


def test_a_locked_ledger_is_an_infrastructure_error_naming_it(tmp_path: Path) -> None:
    from gates.ledger.db import LedgerUnavailable

    path = tmp_path / "l.sqlite"
    led = Ledger(str(path), busy_timeout_s=0.05)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    with pytest.raises(LedgerUnavailable, match=r"ledger .*l\.sqlite: OperationalError: database is locked") as err:
        led.record("p", "me", "promote_denied", None, None)
    assert err.value.exit_code == 3
    other.execute("ROLLBACK")
    led.record("p", "me", "promote_denied", None, None)  # the connection is usable again
    assert [h["action"] for h in led.history("p")] == ["promote_denied"]


def test_a_sqlite_ledger_in_the_jobs_workspace_is_refused_naming_the_secret(tmp_path: Path) -> None:
    """Issue 31: on a persistent runner actions/checkout cleaned the workspace, and the ledger in it."""
    from gates.errors import BadInputError
    from gates.ledger.db import require_durable

    env = {"GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(tmp_path / "ws")}
    with pytest.raises(BadInputError) as err:
        require_durable(str(tmp_path / "ws" / "artifacts" / "ledger.sqlite"), env)
    assert "inside the job's workspace" in str(err.value) and "GATES_LEDGER_URL" in str(err.value)
    require_durable(str(tmp_path / "elsewhere" / "ledger.sqlite"), env)  # outside it: fine
    require_durable("postgresql://gates@db/gates", env)
    require_durable(str(tmp_path / "ws" / "ledger.sqlite"), {"GITHUB_WORKSPACE": str(tmp_path / "ws")})  # not Actions
