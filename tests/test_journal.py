"""A busy ledger loses no record: retried with a bound, then journaled and replayed."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gates.cli.common import open_ledger
from gates.errors import InfraError
from gates.journal import Journal, retry
from gates.ledger import Ledger


def _hold_write_lock(path: Path) -> sqlite3.Connection:
    """Another process's writer, mid-transaction: what "database is locked" means."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    return other


def test_retry_is_bounded_and_names_what(tmp_path: Path) -> None:
    ledger = Ledger(str(tmp_path / "l.db"), busy_timeout_s=0.05)
    other = _hold_write_lock(tmp_path / "l.db")
    slept: list[float] = []
    with pytest.raises(InfraError, match="recording x failed after retrying"):
        retry("recording x", lambda: ledger.add_run("p", "PASS", "me"), budget_s=1.0, sleep=slept.append)
    assert slept and sum(slept) <= 1.0
    other.execute("ROLLBACK")
    assert retry("recording x", lambda: ledger.add_run("p", "PASS", "me")) is None
    assert [r.verdict for r in ledger.runs()] == ["PASS"]


def test_a_bad_statement_is_not_retried(tmp_path: Path) -> None:
    calls: list[int] = []

    def bad() -> None:
        calls.append(1)
        raise sqlite3.IntegrityError("constraint")

    with pytest.raises(sqlite3.IntegrityError):
        retry("x", bad, sleep=lambda s: None)
    assert calls == [1]


def test_journal_replays_into_its_own_ledger_only(tmp_path: Path) -> None:
    ledger, other = Ledger(str(tmp_path / "a.db")), Ledger(str(tmp_path / "b.db"))
    journal = Journal(tmp_path / "artifacts")
    journal.add(ledger, "run", {"pipeline": "p", "verdict": "PASS", "actor": "me", "pr": 3, "sha": "ab" * 20})
    assert journal.replay(other, lambda s: None) == 0 and other.runs() == []
    lines: list[str] = []
    assert journal.replay(ledger, lines.append) == 1
    assert [(r.pipeline, r.verdict, r.pr) for r in ledger.runs()] == [("p", "PASS", 3)]
    assert journal.pending() == [] and "recorded run" in lines[0]


def test_open_ledger_replays_the_journal(tmp_path: Path) -> None:
    url = str(tmp_path / "l.db")
    Journal(tmp_path / "artifacts").add(Ledger(url), "run", {"pipeline": "p", "verdict": "FAIL", "actor": "me"})
    assert [r.verdict for r in open_ledger(url, tmp_path / "artifacts").runs()] == ["FAIL"]


def test_a_replayed_run_keeps_its_time_and_place_in_history(tmp_path: Path) -> None:
    """Issue 27 item 2: a PASS journaled before a FAIL on the same commit is replayed as the older run."""
    from gates.errors import ExitCode
    from gates.pipeline import RunOutcome
    from gates.promotion.gate import record_run

    url = tmp_path / "l.db"
    ledger = Ledger(str(url), busy_timeout_s=0.05)
    journal = Journal(tmp_path / "artifacts")
    outcome = RunOutcome("r1", "PASS", "ok", ExitCode.PASS, tmp_path, None, None, "d" * 64)
    other = _hold_write_lock(url)
    assert not record_run(ledger, "p", outcome, "ci", 3, "ab" * 20, journal, lambda s: None, budget_s=0.2)
    other.execute("ROLLBACK")
    ledger.add_run("p", "FAIL", "ci", pr=3, sha="ab" * 20, digest="d" * 64)  # the newer run
    assert journal.replay(ledger, lambda s: None) == 1
    runs = ledger.runs("p")
    assert [r.verdict for r in runs] == ["PASS", "FAIL"] and runs[0].at < runs[1].at
    gate_runs = [h for h in ledger.history("p") if h["action"] == "gate_run"]
    assert [h["verdict"] for h in gate_runs] == ["PASS", "FAIL"] and gate_runs[0]["at"] == runs[0].at


@pytest.mark.parametrize(
    "blob",
    [
        '{"kind": "run", "ledger": "%s", "record": {"verdict": "PASS"}}',  # the campaign's KeyError: 'pipeline'
        '{"kind": "run", "ledger": "%s", "record": {"pipeline": "p", "verdict": "MAYBE", "actor": "me"}}',
        '{"kind": "run", "ledger": "%s", "record": {"pipeline": ["p"], "verdict": "PASS", "actor": "me"}}',
        '{"kind": "run", "ledger": "%s", "record": {"pipeline": "p", "verdict": "PASS", "actor": "me", "at": "x"}}',
        '{"kind": "run", "ledger": "%s", "record": "not an object"}',
        '{"kind": "drop tables", "ledger": "%s", "record": {}}',
        "{not json",
        "[1, 2]",
        "",
    ],
)
def test_a_malformed_journal_file_is_quarantined_and_named(tmp_path: Path, blob: str) -> None:
    """Issue 27 item 13: one bad file no longer bricks every ledger command; it is moved aside, named."""
    url = str(tmp_path / "l.db")
    journal = Journal(tmp_path / "artifacts")
    good = journal.add(Ledger(url), "run", {"pipeline": "p", "verdict": "PASS", "actor": "me"})
    bad = journal.dir / "0000000001.000000-bad-run.json"  # sorts first
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_text(blob.replace("%s", url) if "%s" in blob else blob)
    lines: list[str] = []
    ledger = Ledger(url)
    assert journal.replay(ledger, lines.append) == 1  # the good record behind it is still written
    assert [r.verdict for r in ledger.runs()] == ["PASS"] and not good.exists() and not bad.exists()
    moved = journal.dir / "quarantine" / bad.name
    assert moved.is_file() and any(str(bad) in line and str(moved) in line for line in lines)
    assert journal.pending() == []


def test_a_rollback_never_waits_on_the_journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 27 item 13: `gates rollback` opens the ledger without replaying; promote still replays first."""
    import shutil

    from gates.cli.main import main
    from gates.ledger import CanaryState

    repo = Path(__file__).resolve().parents[1]
    (tmp_path / "pipelines").mkdir()
    text = (repo / "pipelines" / "demo.yaml").read_text().replace('["@org/release-managers"]', '["me"]')
    (tmp_path / "pipelines" / "demo.yaml").write_text(text)
    shutil.copytree(repo / "golden_prompts", tmp_path / "golden_prompts")
    monkeypatch.chdir(tmp_path)
    url = str(tmp_path / "l.db")
    state = CanaryState("demo", "kserve", "ml/demo/s3://b/demo", None, "s3://b/demo", 10, 0.0)
    Ledger(url).set_canary(state, "ops", "deploy")
    journal = Journal(tmp_path / "artifacts")
    kept = journal.add(Ledger(url), "run", {"pipeline": "demo", "verdict": "PASS", "actor": "me"})
    monkeypatch.setenv("PATH", str(tmp_path))  # no kubectl: the rollback is recorded, the apply fails (exit 3)
    with pytest.raises(SystemExit):
        main(["rollback", "pipelines/demo.yaml", "--ledger", url, "--actor", "me"])
    assert kept.exists(), "the rollback replayed the journal first"
    assert Ledger(url).promotion("demo").state == "rolling_back"  # type: ignore[union-attr]


def test_a_journaled_run_is_replayed_however_the_ledger_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 27 item 11: journaled under a relative path, replayed by a command naming the file otherwise."""
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    journal = Journal(tmp_path / "artifacts")
    journal.add(Ledger("../l.db"), "run", {"pipeline": "p", "verdict": "PASS", "actor": "me"})
    journal.add(Ledger("sqlite:///../l.db"), "run", {"pipeline": "p", "verdict": "FAIL", "actor": "me"})
    monkeypatch.chdir(tmp_path)
    (tmp_path / "link").symlink_to(tmp_path)
    ledger = Ledger(str(tmp_path / "link" / "l.db"))  # absolute, through a symlink, from another directory
    assert journal.replay(ledger, lambda s: None) == 2
    assert [r.verdict for r in ledger.runs()] == ["PASS", "FAIL"] and journal.pending() == []


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        k: _JSON | st.sampled_from(["p", "PASS", "FAIL", "ab" * 20, 3, 1.5e9])
        for k in ("pipeline", "verdict", "actor", "pr", "sha", "digest", "report", "run_dir", "arch", "at", "config")
    },
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(record=_FIELDS | _JSON)
def test_any_journal_file_is_recorded_or_quarantined_never_an_error(tmp_path: Path, record: object) -> None:
    """Fuzz (issue 27 item 13): whatever a journal file holds, replay records it or moves it aside, naming it."""
    import uuid

    url = str(tmp_path / f"{uuid.uuid4().hex}.db")
    ledger = Ledger(url)
    journal = Journal(tmp_path / uuid.uuid4().hex)
    path = journal.add(ledger, "run", {})
    path.write_text(json.dumps({"kind": "run", "ledger": ledger.identity, "record": record}))
    lines: list[str] = []
    done = journal.replay(ledger, lines.append)
    assert journal.pending() == []
    if done == 0:
        assert (path.parent / "quarantine" / path.name).is_file() and str(path) in lines[-1]
    else:
        assert len(ledger.runs()) == 1


def test_a_run_journaled_under_another_artifacts_root_is_replayed(tmp_path: Path) -> None:
    """Issue 27 item 11: `gates run --artifacts A` journals; a command with artifacts root B replays it
    (a SQLite ledger's journal is kept beside the ledger file, which every command that opens it finds)."""
    url = tmp_path / "ledger" / "l.db"
    ledger = Ledger(str(url), busy_timeout_s=0.05)
    other = _hold_write_lock(url)
    from gates.errors import ExitCode
    from gates.pipeline import RunOutcome
    from gates.promotion.gate import record_run

    outcome = RunOutcome("r1", "PASS", "ok", ExitCode.PASS, tmp_path, None, None, "d" * 64)
    kept = record_run(ledger, "p", outcome, "ci", 3, "ab" * 20, Journal(tmp_path / "A"), lambda s: None, budget_s=0.2)
    other.execute("ROLLBACK")
    assert not kept
    assert [r.verdict for r in open_ledger(str(url), tmp_path / "B").runs()] == ["PASS"]
