"""Reading Triton's ``generate_stream`` server-sent events (load workers and canary re-checks)."""

from __future__ import annotations

import json
import time
from typing import Any


def read_stream(response: Any, clock: Any = time.monotonic) -> tuple[list[float], str]:
    """Read a ``generate_stream`` SSE body: the arrival time of each token event, and an error if any."""
    times: list[float] = []
    while True:
        line = response.readline()
        if not line:
            return times, ""
        if not line.startswith(b"data:"):
            continue
        try:
            event = json.loads(line[5:])
        except ValueError:
            return times, f"unreadable event: {line[:120]!r}"
        if "error" in event:
            return times, f"server: {str(event['error'])[:200]}"
        times.append(clock())
