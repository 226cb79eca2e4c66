"""Synthetic traffic where there is none: a paired open-loop load through the canary target.

Every ``1 / rate`` seconds one request goes to each arm at the same moment (the proxy honours the
arm named in ``X-Gates-Synthetic`` from 127.0.0.1 and logs the label), whatever the earlier ones
are doing (open loop: a slow arm does not slow the arrivals, so its queueing shows). Both arms get
the same prompts at the same times, so a busy machine slows both: infrastructure, not the canary.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from gates.promotion.haproxy import ARMS, SYNTHETIC_HEADER


def send(url: str, served: str, prompt: str, max_new_tokens: int, arm: str, user: str) -> int:
    """One streamed generation through the proxy for ``arm``; the HTTP status (-1: no answer)."""
    host, port = url.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=120)
    body = json.dumps({"PROMPT": prompt, "MAX_NEW_TOKENS": max_new_tokens, "STREAM": True})
    headers = {"Content-Type": "application/json", SYNTHETIC_HEADER: arm, "X-User-Id": user}
    try:
        conn.request("POST", f"/v2/models/{served}/generate_stream", body=body, headers=headers)
        resp = conn.getresponse()
        resp.read()
        return int(resp.status)
    except OSError:
        return -1
    finally:
        conn.close()


def paired_load(
    url: str,
    served: str,
    prompts: Sequence[str],
    rate_per_s: float,
    duration_s: float,
    max_new_tokens: int,
    arms: Sequence[str] = ARMS,  # ("stable",) while the proxy mirrors: it sends the canary's copy
) -> int:
    """Drive the load for ``duration_s``, then wait for the requests in flight; pairs sent."""
    prompts = list(prompts) or ["Hello"]
    futures: list[Future[int]] = []
    stop = threading.Event()
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=64, thread_name_prefix="gates-synthetic") as pool:
        k = 0
        while not stop.is_set():
            due = start + k / rate_per_s
            if due - start >= duration_s:
                break
            delay = due - time.monotonic()
            if delay > 0:
                stop.wait(delay)
            prompt = prompts[k % len(prompts)]
            for arm in arms:
                futures.append(pool.submit(send, url, served, prompt, max_new_tokens, arm, f"synthetic-{k}"))
            k += 1
        for f in futures:
            f.result()
    return k
