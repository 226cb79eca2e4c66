"""One streamed request to one arm, as a per-request record (closed and open loop share it)."""

from __future__ import annotations

import json
import time
from typing import Any

from gates.loadgen.sse import read_stream


def send(
    client: Any, arm: str, model: str, prompt: str, max_new: int, t0: float, user: int, pair: str = ""
) -> dict[str, Any]:
    """POST ``generate_stream`` on ``client`` (an ``http.client.HTTPConnection``) and time it.

    Every failure is data: it becomes a record with ``ok`` 0 and the error, never an exception.
    """
    body = json.dumps({"PROMPT": prompt, "MAX_NEW_TOKENS": max_new, "STREAM": True})
    start = time.monotonic()
    times: list[float] = []
    error = ""
    try:
        client.request(
            "POST", f"/v2/models/{model}/generate_stream", body=body, headers={"Content-Type": "application/json"}
        )
        response = client.getresponse()
        if response.status != 200:
            error = f"HTTP {response.status}: {response.read()[:200]!r}"
        else:
            times, error = read_stream(response)
            response.read()  # drain, so the connection can be reused
        if not error and not times:
            error = "stream ended without a token"
    except Exception as exc:  # every failure is data: it counts in the error rate
        error = f"{type(exc).__name__}: {exc}"[:300]
        client.close()  # a broken connection is reopened by the next request
    end = time.monotonic()
    tokens = len(times)
    ttft = (times[0] - start) * 1000 if times else None
    itl = (times[-1] - times[0]) * 1000 / (tokens - 1) if tokens > 1 else None
    return {
        "arm": arm,
        "max_new_tokens": max_new,
        "user": user,
        "t_start_s": round(start - t0, 6),
        "latency_ms": round((end - start) * 1000, 3),
        "ttft_ms": "" if ttft is None else round(ttft, 3),
        "itl_ms": "" if itl is None else round(itl, 3),
        "ok": int(not error),
        "output_tokens": tokens,
        "prompt_chars": len(prompt),
        "error": error,
        "pair": pair,
    }
