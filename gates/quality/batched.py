"""Numerics under batching: each model's greedy answers to the golden prompts, asked all at once
(streamed, so they share the engine's batches), against its own one-at-a-time answers.

Drift is measured on one-at-a-time answers (the scoring path); users get batched ones. Where a
batched kernel computes differently (other GEMM shapes, padding), the answers can diverge: this
says by how much, per arm, so the gate's drift is known to hold for what users get."""

from __future__ import annotations

import dataclasses
import http.client
import json
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor


@dataclasses.dataclass(frozen=True)
class BatchedAgreement:
    prompts: int
    exact_match_rate: float  # batched answer == one-at-a-time answer, token for token
    token_agreement: float  # tokens before the first divergence, over all one-at-a-time tokens
    failed: int  # batched requests that returned an error (their prompts are not compared)


def stream_token_ids(url: str, model: str, prompt: str, max_new: int, timeout_s: float = 300.0) -> list[int]:
    """The token ids of one greedy ``generate_stream`` answer (HTTP, as the load generator sends)."""
    host, port = url.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout_s)
    try:
        body = json.dumps({"PROMPT": prompt, "MAX_NEW_TOKENS": max_new, "STREAM": True})
        headers = {"Content-Type": "application/json"}
        conn.request("POST", f"/v2/models/{model}/generate_stream", body=body, headers=headers)
        response = conn.getresponse()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {response.read()[:200]!r}")
        tokens: list[int] = []
        for line in response:
            if not line.startswith(b"data:"):
                continue
            event = json.loads(line[5:])
            if "error" in event:
                raise RuntimeError(str(event["error"])[:200])
            ids = event["TOKEN_IDS"]
            tokens.extend(int(t) for t in (ids if isinstance(ids, list) else [ids]))
        return tokens
    finally:
        conn.close()


def agreement(alone: Sequence[Sequence[int]], batched: Sequence[Sequence[int] | None]) -> BatchedAgreement:
    pairs = [(a, b) for a, b in zip(alone, batched, strict=True) if b is not None]
    failed = len(alone) - len(pairs)
    if not pairs:
        return BatchedAgreement(0, float("nan"), float("nan"), failed)
    exact = sum(tuple(a) == tuple(b) for a, b in pairs)
    total = sum(len(a) for a, _ in pairs)
    agreed = 0
    for a, b in pairs:
        n = 0
        while n < min(len(a), len(b)) and a[n] == b[n]:
            n += 1
        agreed += n
    return BatchedAgreement(len(pairs), exact / len(pairs), agreed / total if total else float("nan"), failed)


def batched_agreement(
    url: str,
    model: str,
    prompts: Sequence[str],
    budgets: Sequence[int],
    alone: Sequence[Sequence[int]],
    check_alive: Callable[[], None],
    concurrency: int = 16,
) -> BatchedAgreement:
    """Send every prompt at once (up to ``concurrency`` in flight) and compare with ``alone``."""

    def one(i: int) -> list[int] | None:
        try:
            return stream_token_ids(url, model, prompts[i], budgets[i])
        except Exception:  # counted as failed; a dead server is caught by check_alive below
            return None

    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(prompts)))) as pool:
        batched = list(pool.map(one, range(len(prompts))))
    check_alive()
    return agreement(alone, batched)
