"""Against the real tritonserver: the torch engine's served model batches concurrent streamed requests
through transformers' continuous batching, and each answer is its one-at-a-time answer."""

from __future__ import annotations

import http.client
import json
import re
import threading
from pathlib import Path

import pytest

from gates.engines.torch_runner import TorchRunner
from gates.triton.repository import set_parameters, write_model
from gates.triton.server import TritonServer

pytestmark = pytest.mark.integration

PROMPTS = [
    "Shall I compare thee to a summer's day?",
    "The quick brown fox",
    "To be, or not to be, that is the question:",
    "Once upon a time",
    "It was the best of times, it was the worst of times,",
    "Call me Ishmael.",
    "In the beginning",
    "All happy families are alike;",
]
MAX_NEW = 64


def _stream(url: str, prompt: str) -> tuple[list[int], str]:
    """Token ids of one ``generate_stream`` request, and its error (empty when none)."""
    host, port = url.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=120)
    body = json.dumps({"PROMPT": prompt, "MAX_NEW_TOKENS": MAX_NEW, "STREAM": True})
    conn.request("POST", "/v2/models/baseline/generate_stream", body=body, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    tokens: list[int] = []
    for line in response:
        if not line.startswith(b"data:"):
            continue
        event = json.loads(line[5:])
        if "error" in event:
            return tokens, str(event["error"])
        ids = event["TOKEN_IDS"]
        tokens.extend(ids if isinstance(ids, list) else [ids])
    conn.close()
    return tokens, ""


def test_eight_streams_share_steps_and_get_their_one_at_a_time_answers(
    tmp_path: Path, tiny_model: Path, no_leaked_servers: None
) -> None:
    runner = TorchRunner(tiny_model, 1)
    want = [list(runner.stream(runner.encode(p), MAX_NEW)) for p in PROMPTS]
    repo = tmp_path / "models"
    set_parameters(write_model(repo, "baseline", tiny_model), {"batching": "engine", "max_batch": "8"})
    got: list[tuple[list[int], str]] = [([], "")] * len(PROMPTS)
    with TritonServer(repo, tmp_path) as server:
        server.load_model("baseline")

        def one(k: int) -> None:
            got[k] = _stream(server.url, PROMPTS[k])

        threads = [threading.Thread(target=one, args=(k,)) for k in range(len(PROMPTS))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=180)
        metrics = server.metrics()
    assert [e for _, e in got] == [""] * len(PROMPTS)
    assert [t for t, _ in got] == want
    steps = {
        int(m.group(1)): float(m.group(2))
        for m in re.finditer(r'gates_engine_steps_total\{[^}]*batch="(\d+)"[^}]*\} (\S+)', metrics)
    }
    assert steps and max(k for k, v in steps.items() if v > 0) >= 4, steps
    assert sum(k * v for k, v in steps.items()) == sum(len(t) for t in want)
    assert re.search(r"gates_engine_max_batch\{[^}]*\} 8", metrics), metrics[-2000:]
