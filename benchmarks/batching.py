"""One request at a time against the engine's own batching, same engine and model, side by side.

SmolLM2-135M-Instruct built by gates' ONNX Runtime GenAI engine (int8 weights, int8 compute) and,
where the `openvino` engine is registered, by OpenVINO GenAI (int8 weights). Each configuration
is served the two ways the Triton model serves it (gates/triton/python_model.py), in process so
only the serving path differs:

- one at a time: one worker thread takes the requests in arrival order and generates each to the
  end (``Runner.stream``), as the served model did before batching;
- batching: every request goes to the engine's own scheduler (``Runner.batching``), which picks
  the sequences of each step.

N concurrent streams (a closed loop: each stream sends its next request when the last one ended)
send golden prompts with ``--new-tokens`` tokens each, for ``--requests`` requests per stream.
Per point: output tokens/s, p95 TTFT (queueing included: a request waits for a one-at-a-time
server), mean ITL, mean sequences per engine step.

    .venv/bin/python benchmarks/batching.py [--streams 1 4 16] [--threads 2] [--requests 3]

Last line: ``batching_gain_16=<tokens/s with batching ÷ one at a time at 16 streams>
latency_point_ratio=<p95 latency with batching ÷ one at a time at 1 stream>
openvino_gain_16=<the same gain for the openvino engine, or nan without it>``.
Goals (issue 25): batching_gain_16 ≥ 3.0, latency_point_ratio ≤ 1.10.
"""

from __future__ import annotations

import argparse
import math
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GATES_PROGRESS", "0")

import numpy as np

from gates.artifacts import ArtifactStore, ModelRef, tree_digest
from gates.config.engine import EngineSection
from gates.engines import ENGINES, load_runner
from gates.engines.batching import Job
from gates.models.prompts import render_golden
from gates.models.sources import SMOLLM2, resolve_source
from gates.quality.golden import load_golden_suite

REPO = Path(__file__).resolve().parent.parent


class OneAtATime:
    """The served model's one-at-a-time path: one worker, requests in arrival order."""

    def __init__(self, runner: Any) -> None:
        self.runner = runner
        self.inbox: queue.Queue[Job | None] = queue.Queue()
        self.steps = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def submit(self, job: Job) -> None:
        self.inbox.put(job)

    def _serve(self) -> None:
        while (job := self.inbox.get()) is not None:
            for token in self.runner.stream(job.ids, job.max_new):
                self.steps += 1
                job.on_token(token)
            job.on_done(None)

    def batch_size_mean(self) -> float:
        return 1.0

    def close(self) -> None:
        self.inbox.put(None)
        self.thread.join()


class Batched:
    def __init__(self, runner: Any) -> None:
        self.scheduler = runner.batching(0)
        if self.scheduler is None:
            raise SystemExit(f"{type(runner).__name__} has no batching scheduler")

    def submit(self, job: Job) -> None:
        self.scheduler.submit(job)

    def batch_size_mean(self) -> float:
        return float(self.scheduler.stats().batch_size_mean or math.nan)

    def close(self) -> None:
        self.scheduler.close()


def run_point(server: Any, ids: list[list[int]], streams: int, requests: int, new: int) -> dict[str, float]:
    """``streams`` closed-loop clients, ``requests`` each: throughput, p95 TTFT and latency, mean ITL."""
    ttft, latency, itl, tokens = [], [], [], [0]
    lock = threading.Lock()

    def client(c: int) -> None:
        for r in range(requests):
            done = threading.Event()
            times: list[float] = []
            errors: list[str | None] = []

            def finished(error: str | None, done: threading.Event = done, errors: list[str | None] = errors) -> None:
                errors.append(error)
                done.set()

            start = time.perf_counter()
            server.submit(
                Job(
                    ids[(c * requests + r) % len(ids)],
                    new,
                    lambda t, ts=times: ts.append(time.perf_counter()),
                    finished,
                )
            )
            done.wait()
            if errors[0] is not None:
                raise RuntimeError(errors[0])
            with lock:
                tokens[0] += len(times)
                ttft.append(times[0] - start)
                latency.append(times[-1] - start)
                if len(times) > 1:
                    itl.append((times[-1] - times[0]) / (len(times) - 1))

    threads = [threading.Thread(target=client, args=(c,)) for c in range(streams)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    return {
        "tokens_per_s": tokens[0] / wall,
        "ttft_p95_ms": float(np.percentile(ttft, 95)) * 1000,
        "latency_p95_ms": float(np.percentile(latency, 95)) * 1000,
        "itl_ms": float(np.mean(itl)) * 1000 if itl else math.nan,
        "batch_size_mean": server.batch_size_mean(),
    }


def compare(
    name: str, runner: Any, ids: list[list[int]], streams: list[int], requests: int, new: int
) -> dict[int, Any]:
    """Both serving paths of one runner at each stream count, printed side by side."""
    print(f"\n{name}")
    header = ("streams", "path", "tok/s", "p95 TTFT ms", "p95 latency ms", "ITL ms", "batch")
    print("{:>7} {:<12} {:>8} {:>12} {:>15} {:>8} {:>6}".format(*header))
    out: dict[int, Any] = {}
    for n in streams:
        row = {}
        for label, make in (("one-at-once", OneAtATime), ("batching", Batched)):
            server: Any = make(runner)
            run_point(server, ids, 1, 1, new)  # warm the path (first allocations, thread start)
            if isinstance(server, Batched):
                server.close()
                server = Batched(runner)  # fresh stats
            figures = run_point(server, ids, n, requests, new)
            server.close()
            row[label] = figures
            print(
                f"{n:>7} {label:<12} {figures['tokens_per_s']:>8.1f} {figures['ttft_p95_ms']:>12.1f} "
                f"{figures['latency_p95_ms']:>15.1f} {figures['itl_ms']:>8.2f} {figures['batch_size_mean']:>6.2f}"
            )
        out[n] = row
        gain = row["batching"]["tokens_per_s"] / row["one-at-once"]["tokens_per_s"]
        print(f"{'':>7} gain {gain:.2f}x")
    return out


def build(engine: str, base: Path, store: ArtifactStore, cfg: EngineSection, log: Callable[[str], None]) -> Path:
    ref = ModelRef("candidate", base, tree_digest(base), "none", "real")
    log(f"building {engine} {cfg.precision} (cached after the first run)")
    return ENGINES[engine].build(store, ref, cfg).serve_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--requests", type=int, default=3, help="requests per stream at each point")
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--artifacts", type=Path, default=REPO / "artifacts")
    args = parser.parse_args()

    def log(s: str) -> None:
        print(s, file=sys.stderr)

    store = ArtifactStore(args.artifacts)
    base = resolve_source(SMOLLM2, Path, store, log).path
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base, local_files_only=True)
    prompts = render_golden(tokenizer, load_golden_suite(REPO / "golden_prompts" / "smollm2.jsonl", "smollm2"))
    print(
        f"SmolLM2-135M-Instruct, {args.threads} threads per model, {args.new_tokens} new tokens per request, "
        f"{args.requests} requests per stream, golden prompts; machine: {os.cpu_count()} CPUs"
    )

    ort_cfg = EngineSection(backend="onnxruntime-genai", precision="int8", accuracy_level=4, block_size=32)
    ort = load_runner(build("onnxruntime-genai", base, store, ort_cfg, log), args.threads)
    ids = [ort.encode(p) for p in prompts]
    results = compare(
        "onnxruntime-genai int8 (og.Engine: static batches on CPU)",
        ort,
        ids,
        args.streams,
        args.requests,
        args.new_tokens,
    )
    top = max(args.streams)
    gain = results[top]["batching"]["tokens_per_s"] / results[top]["one-at-once"]["tokens_per_s"]
    lone = min(args.streams)
    ratio = results[lone]["batching"]["latency_p95_ms"] / results[lone]["one-at-once"]["latency_p95_ms"]

    ov_gain = math.nan
    if "openvino" in ENGINES:
        ov_cfg = EngineSection(backend="openvino", precision="int8")
        ov = load_runner(build("openvino", base, store, ov_cfg, log), args.threads)
        ov_ids = [ov.encode(p) for p in prompts]
        ov_results = compare(
            "openvino int8 (ContinuousBatchingPipeline)", ov, ov_ids, args.streams, args.requests, args.new_tokens
        )
        ov_gain = ov_results[top]["batching"]["tokens_per_s"] / ov_results[top]["one-at-once"]["tokens_per_s"]
    else:
        print("\nopenvino: engine not registered here (openvino_gain_16=nan)")
    print(f"batching_gain_{top}={gain:.2f} latency_point_ratio={ratio:.3f} openvino_gain_{top}={ov_gain:.2f}")


if __name__ == "__main__":
    main()
