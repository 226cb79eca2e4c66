"""Is locust a faithful load generator here? locust vs a raw tritonclient loop, same model, same concurrency.

One real tritonserver serves the builtin tiny Llama (decoupled, streaming). Three clients drive it
in turn for the same duration at the same concurrency, each request streaming `--tokens` tokens:
- locust: gates' own load path (the worker process, gevent, HTTP generate_stream);
- raw tritonclient: N threads, each with its own tritonclient.grpc stream;
- raw http: N threads with http.client on the same HTTP generate_stream endpoint (no gevent).
Printed: requests/s and p50/p99 latency of each, and locust against raw tritonclient.

    .venv/bin/python benchmarks/load_generator.py [--users 4] [--duration 15] [--tokens 8]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import queue
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from gates.loadgen.run import run_worker
from gates.loadgen.spec import LoadSpec
from gates.loadgen.stats import read_records
from gates.models.tiny import ensure_tiny_llama
from gates.triton.client import build_inputs
from gates.triton.repository import write_model
from gates.triton.server import TritonServer

PROMPTS = ["Four score and seven years", "We the People of the United States", "It was the best of times,"]


def threaded(n: int, duration: float, one: object) -> list[float]:
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + duration

    def loop(i: int) -> None:
        state = one.setup()  # type: ignore[attr-defined]
        k = i
        while time.monotonic() < stop:
            t0 = time.monotonic()
            one.call(state, PROMPTS[k % len(PROMPTS)])  # type: ignore[attr-defined]
            with lock:
                latencies.append((time.monotonic() - t0) * 1000)
            k += 1
        one.close(state)  # type: ignore[attr-defined]

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies


class RawGrpc:
    def __init__(self, url: str, tokens: int):
        self.url, self.tokens = url, tokens

    def setup(self) -> object:
        import tritonclient.grpc as grpcclient

        client = grpcclient.InferenceServerClient(self.url)
        answers: queue.Queue[object] = queue.Queue()
        client.start_stream(callback=lambda result, error: answers.put((result, error)))
        return client, answers

    def call(self, state: object, prompt: str) -> None:
        client, answers = state  # type: ignore[misc]
        inputs = build_inputs(prompt, self.tokens)
        client.async_stream_infer("tiny", inputs)
        _, error = answers.get(timeout=60)
        if error:
            raise RuntimeError(error)

    def close(self, state: object) -> None:
        client, _ = state  # type: ignore[misc]
        client.stop_stream()
        client.close()


class RawHttp:
    def __init__(self, url: str, tokens: int):
        self.host, self.port = url.rsplit(":", 1)
        self.tokens = tokens

    def setup(self) -> object:
        return http.client.HTTPConnection(self.host, int(self.port), timeout=60)

    def call(self, conn: object, prompt: str) -> None:
        body = json.dumps({"PROMPT": prompt, "MAX_NEW_TOKENS": self.tokens, "STREAM": True})
        conn.request(
            "POST",
            "/v2/models/tiny/generate_stream",
            body=body,  # type: ignore[attr-defined]
            headers={"Content-Type": "application/json"},
        )
        resp = conn.getresponse()  # type: ignore[attr-defined]
        data = resp.read()
        if resp.status != 200 or data.count(b"data:") != self.tokens:
            raise RuntimeError(data[:200])

    def close(self, conn: object) -> None:
        conn.close()  # type: ignore[attr-defined]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=4)
    ap.add_argument("--duration", type=float, default=15.0)
    ap.add_argument("--tokens", type=int, default=8)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gates-bench-"))
    model = ensure_tiny_llama(Path("artifacts"))
    write_model(work / "models", "tiny", model)
    rows = {}
    with TritonServer(work / "models", work) as server:
        server.load_model("tiny")
        spec = LoadSpec(
            url=server.url,
            arms={"tiny": "tiny"},
            prompts=tuple(PROMPTS),
            prompt_weights=(1.0,) * len(PROMPTS),
            users=args.users,
            spawn_rate=float(args.users),
            duration_s=args.duration,
            max_new_tokens=args.tokens,
            max_new_tokens_max=args.tokens,
            timeout_s=60,
        )
        records = read_records(run_worker(spec, work / "locust", server.check_alive))
        ok = [r["latency_ms"] for r in records if r["ok"]]
        rows["locust"] = (len(ok) / args.duration, ok)
        lat = threaded(args.users, args.duration, RawGrpc(server.grpc_url, args.tokens))
        rows["raw tritonclient"] = (len(lat) / args.duration, lat)
        lat = threaded(args.users, args.duration, RawHttp(server.url, args.tokens))
        rows["raw http"] = (len(lat) / args.duration, lat)
    print(f"{args.users} concurrent users, {args.duration:.0f} s each, {args.tokens} streamed tokens per request\n")
    print(f"{'client':18} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for name, (rps, lat) in rows.items():
        print(f"{name:18} {rps:8.1f} {np.percentile(lat, 50):8.1f} {np.percentile(lat, 99):8.1f}")
    locust_rps, locust_lat = rows["locust"]
    raw_rps, raw_lat = rows["raw tritonclient"]
    p99_diff = np.percentile(locust_lat, 99) / np.percentile(raw_lat, 99) - 1
    print(
        f"\nlocust_rps={locust_rps:.1f} raw_rps={raw_rps:.1f} rps_ratio={locust_rps / raw_rps:.3f} "
        f"p99_diff={p99_diff:+.3f} raw_http_rps={rows['raw http'][0]:.1f} users={args.users} tokens={args.tokens}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
