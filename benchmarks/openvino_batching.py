"""The openvino engine on SmolLM2-135M-Instruct: one request at a time against OpenVINO GenAI's
continuous batching, in process (no Triton), same IR, same prompts, greedy.

One at a time is what a served model with ``serve.batching: off`` does: every request waits for
the one before it, each runs alone on the direct path (``runner.stream``); also printed: the
pipeline fed one request at a time (how much of the gain is the batch, not the engine). Batching hands all of
them to ``runner.batching()`` (``ContinuousBatchingPipeline``) at once. Printed per mode: output
tokens/s, the mean and max number of sequences per engine step, and whether the greedy answers
are the same. Last line: ``openvino_gain_<streams>=<tokens/s batching ÷ one at a time>``.

    .venv/bin/python benchmarks/openvino_batching.py [--streams 16] [--max-new 32] [--arm candidate]
        [--accuracy-level 1|4] [--precision int8|int4]

``measure(runner, prompts, streams, max_new)`` is the function benchmarks/batching.py may call
with any runner that has ``batching()`` (``gates.engines.load_runner(path, threads)``).
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PROMPTS = (
    "The capital of France is",
    "Water boils at",
    "The largest planet in the solar system is",
    "To make a cup of tea, first",
    "The opposite of hot is",
    "A week has seven days: Monday,",
    "The author of Romeo and Juliet is",
    "Photosynthesis is the process by which",
    "The chemical symbol for gold is",
    "In 1969, the first man on the Moon was",
    "The fastest land animal is",
    "Two plus two equals",
    "The Great Wall of China was built to",
    "The tallest mountain on Earth is",
    "Bees make honey from",
    "The speed of light is about",
)


def one_at_a_time(runner: Any, prompts: list[list[int]], max_new: int) -> tuple[float, list[list[int]]]:
    t0 = time.perf_counter()
    answers = [list(runner.stream(ids, max_new)) for ids in prompts]
    return time.perf_counter() - t0, answers


def batched(
    runner: Any, prompts: list[list[int]], max_new: int, max_batch: int, sequential: bool = False
) -> tuple[float, list[list[int]], Any]:
    """All requests to the engine's scheduler at once (``sequential``: each after the one before)."""
    from gates.engines.batching import Job

    scheduler = runner.batching(max_batch)
    try:
        warm = threading.Event()  # the pipeline compiles on its first step: not part of the timing
        scheduler.submit(Job(prompts[0], 2, lambda t: None, lambda e: warm.set()))
        warm.wait(300)
        before = scheduler.stats()
        answers: list[list[int]] = [[] for _ in prompts]
        errors: list[str | None] = [None] * len(prompts)
        done = threading.Semaphore(0)

        def finish(i: int, error: str | None) -> None:
            errors[i] = error
            done.release()

        t0 = time.perf_counter()
        for i, ids in enumerate(prompts):
            scheduler.submit(Job(ids, max_new, answers[i].append, lambda e, i=i: finish(i, e)))
            if sequential:
                done.acquire(timeout=600)
        for _ in [] if sequential else prompts:
            done.acquire(timeout=600)
        wall = time.perf_counter() - t0
        stats = scheduler.stats().minus(before)
    finally:
        scheduler.close()
    failed = [e for e in errors if e]
    if failed:
        raise RuntimeError(f"{len(failed)} batched requests failed: {failed[0]}")
    return wall, answers, stats


def measure(runner: Any, prompts: list[str], streams: int, max_new: int, max_batch: int = 0) -> dict[str, Any]:
    """Output tokens/s one at a time and with the engine's batching, over ``streams`` requests."""
    ids = [runner.encode(prompts[i % len(prompts)]) for i in range(streams)]
    list(runner.stream(ids[0], 2))  # warm the direct path
    solo_s, solo = one_at_a_time(runner, ids, max_new)
    batch_s, together, stats = batched(runner, ids, max_new, max_batch)
    queue_s, queued, _ = batched(runner, ids, max_new, max_batch, sequential=True)
    solo_tokens, batch_tokens = sum(map(len, solo)), sum(map(len, together))
    return {
        "streams": streams,
        "one_at_a_time": {"tokens": solo_tokens, "wall_s": solo_s, "tokens_per_s": solo_tokens / solo_s},
        "batching": {
            "tokens": batch_tokens,
            "wall_s": batch_s,
            "tokens_per_s": batch_tokens / batch_s,
            "batch_size_mean": stats.batch_size_mean,
            "batch_size_max": stats.batch_size_max,
        },
        "pipeline_one_at_a_time": {"tokens_per_s": sum(map(len, queued)) / queue_s},
        "same_answers": sum(a == b for a, b in zip(solo, together, strict=True)),
        "gain": (batch_tokens / batch_s) / (solo_tokens / solo_s),
    }


def build(arm: str, precision: str, accuracy_level: int, artifacts: Path) -> Path:
    from gates.artifacts import ArtifactStore, ModelRef, tree_digest
    from gates.config.engine import EngineSection
    from gates.engines import ENGINES
    from gates.models.sources import SMOLLM2, resolve_source

    store = ArtifactStore(artifacts)
    source = resolve_source(SMOLLM2, Path, store, lambda line: print(line, flush=True))
    cfg = EngineSection(backend="openvino", precision=precision, accuracy_level=accuracy_level)  # type: ignore[arg-type]
    model = ModelRef(arm, source.path, tree_digest(source.path), "none", "real")
    t0 = time.perf_counter()
    built = ENGINES["openvino"].build(store, model, cfg)
    print(f"{arm} build: {built.serve_path} ({'reused' if built.reused else f'{time.perf_counter() - t0:.0f} s'})")
    return built.serve_path


def main() -> None:
    from gates.engines import load_runner

    ap = argparse.ArgumentParser()
    ap.add_argument("--streams", type=int, default=16)
    ap.add_argument("--max-new", type=int, default=32)
    ap.add_argument("--arm", choices=("baseline", "candidate"), default="candidate")
    ap.add_argument("--precision", choices=("int8", "int4"), default="int8")
    ap.add_argument("--accuracy-level", type=int, choices=(1, 4), default=1, help="4: int8 activations")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--artifacts", type=Path, default=REPO / "artifacts")
    args = ap.parse_args()
    path = build(args.arm, args.precision, args.accuracy_level, args.artifacts)
    runner = load_runner(path, args.threads)
    out = measure(runner, list(PROMPTS), args.streams, args.max_new)
    print(f"load average before/after: {os.getloadavg()[0]:.1f}")
    for mode in ("one_at_a_time", "batching"):
        row = out[mode]
        extra = f", batch mean {row['batch_size_mean']:.2f} max {row['batch_size_max']}" if mode == "batching" else ""
        print(f"{mode}: {row['tokens']} tokens in {row['wall_s']:.2f} s = {row['tokens_per_s']:.1f} tokens/s{extra}")
    print(f"pipeline, one request at a time: {out['pipeline_one_at_a_time']['tokens_per_s']:.1f} tokens/s")
    print(f"same greedy answers: {out['same_answers']}/{args.streams}")
    print(f"openvino_gain_{args.streams}={out['gain']:.2f}")


if __name__ == "__main__":
    main()
