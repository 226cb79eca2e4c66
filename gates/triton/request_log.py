"""Per-request records of a served model (the ``request_log`` parameter of gates' Triton models).

Runs inside Triton's Python stub (gates/triton/python_model.py imports it once ``python_path`` is
on ``sys.path``); read by canary analysis (gates/promotion/analysis/providers/model_log.py).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from typing import Any

import numpy as np


class RequestLog:
    """One JSON line per streamed request this model served (``request_log`` parameter): when it
    came (epoch seconds), its output tokens and mean inter-token time as the model sent them, and
    whether it ended well. Canary analysis reads them per window and arm (the proxies see TTFT and
    end-to-end latency, not tokens): ITL and output length per request, on what users were sent."""

    def __init__(self, path: str, model: str) -> None:
        self.path, self.model = path, model
        self.lock = threading.Lock()

    def timer(self) -> Timer:
        return Timer(self, time.time())

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps({"model": self.model, **record}) + "\n"
        with self.lock, contextlib.suppress(OSError), open(self.path, "a", encoding="utf-8") as f:
            f.write(line)  # a log that cannot be written leaves ITL unmeasured: no data, never a PASS


class Timer:
    def __init__(self, log: RequestLog, at: float) -> None:
        self.log, self.at = log, at
        self.times: list[float] = []

    def token(self) -> None:
        self.times.append(time.perf_counter())

    def done(self, error: str | None) -> None:
        gaps = np.diff(self.times)
        itl = round(float(gaps.mean()) * 1000, 3) if gaps.size else None
        self.log.write({"at": self.at, "output_tokens": len(self.times), "itl_ms": itl, "ok": error is None})
