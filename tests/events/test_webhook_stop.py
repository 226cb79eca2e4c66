"""Stopping the webhook receiver: its event loop's wake-up pipe is never written after it is closed."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from gates.events.webhook import WebhookServer
from gates.ledger import Ledger


def test_a_wake_up_landing_just_before_stops_own_is_harmless(tmp_path: Path) -> None:
    # A request thread that finishes a response pulls the loop's trigger too. When its byte lands
    # between stop() queuing its closing thunk and stop()'s own pull, the loop runs the thunk first;
    # the thunk used to close the pipe, and stop()'s write then failed with EBADF (seen once in a
    # full run). Here every pull is preceded by such a wake-up, so the race is taken each time.
    server = WebhookServer(b"s", Ledger(str(tmp_path / "l.db")), lambda d: "ok", workers=1)
    server.start()
    trigger = server._httpd.trigger
    original = trigger._physical_pull

    def another_thread_pulled_first() -> Any:
        original()  # the wake-up of a finished response
        time.sleep(0.3)  # the loop runs the queued thunks meanwhile
        return original()

    trigger._physical_pull = another_thread_pulled_first
    server.stop()
    assert not server._serve.is_alive()
    assert trigger._fds == []  # the pipe is closed once the loop has stopped
