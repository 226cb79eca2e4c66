"""No credential from a ledger URL or libpq conninfo is ever printed or written (issue 27 item 18)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gates.errors import InfraError
from gates.journal import Journal
from gates.ledger import Ledger
from gates.ledger.db import identity, redact, scrub


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://gates:hunter@2secret@db:5432/gates", "postgresql://gates:***@db:5432/gates"),
        ("postgresql://gates@db/gates?password=hunter2secret", "postgresql://gates@db/gates?password=***"),
        ("postgresql://gates@db/gates?sslmode=require&sslpassword=hunter2secret", None),
        ("host=db port=5432 user=gates password=hunter2secret dbname=gates", None),
        ("host=db password='hunter2 secret' dbname=gates", None),
        ("postgresql://gates:hunter%402secret@db/gates", "postgresql://gates:***@db/gates"),
    ],
)
def test_redact_hides_every_credential_shape(url: str, shown: str | None) -> None:
    out = redact(url)
    assert "hunter" not in out and "secret" not in out and "2secret" not in out
    if shown is not None:
        assert out == shown
    assert "hunter" not in identity(url) and "secret" not in identity(url)
    message = f'connection to "{url}" failed'
    assert "hunter" not in scrub(message, url) and "2secret" not in scrub(message, url)


def test_a_password_with_an_at_sign_is_scrubbed_from_what_libpq_says() -> None:
    """libpq splits user:hunter@2secret@db at the first @: its messages name host "2secret@db"."""
    url = "postgresql://gates:hunter@2secret@db:5432/gates"
    message = 'could not translate host name "2secret@db" to address; password "hunter" rejected'
    assert "hunter" not in scrub(message, url) and "2secret" not in scrub(message, url)


_PASSWORD = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=30)


@given(_PASSWORD)
def test_a_password_in_the_userinfo_is_never_shown_whatever_it_contains(password: str) -> None:
    assert redact(f"postgresql://user:{password}@host:5432/db") == "postgresql://user:***@host:5432/db"


@given(st.text(st.characters(codec="ascii", exclude_categories=["Cc", "Zs"], exclude_characters="&#'"), min_size=1))
def test_a_password_parameter_is_never_shown(password: str) -> None:
    assert redact(f"postgresql://user@host/db?password={password}") == "postgresql://user@host/db?password=***"


def test_a_conninfo_ledger_is_postgresql_never_a_file_named_with_the_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InfraError) as err:
        Ledger("host=127.0.0.1 port=1 user=gates password=hunter2secret dbname=gates connect_timeout=2")
    assert "hunter2secret" not in str(err.value) and "cannot connect to the PostgreSQL ledger" in str(err.value)
    assert list(tmp_path.iterdir()) == []  # no SQLite file was created


def test_the_journal_stores_the_ledger_without_its_credentials(postgres_server: str, tmp_path: Path) -> None:
    # the test server trusts every connection, so any password is accepted and must still not be written
    with_password = postgres_server.replace("gates@", "gates:hunter%402secret@", 1)  # @ percent-encoded
    with_param = postgres_server + "?password=hunter2secret"
    for url in (with_password, with_param):
        ledger = Ledger(url)
        path = Journal(tmp_path / "artifacts").add(ledger, "run", {"pipeline": "p", "verdict": "PASS", "actor": "me"})
        text = path.read_text()
        assert "hunter" not in text and "2secret" not in text and "hunter" not in ledger.url
