"""CPU engines on SmolLM2-135M-Instruct, side by side in one run: PyTorch fp32, ONNX Runtime GenAI
fp32, int8 and int4 (MatMulNBits, int8 compute), each built by gates' own engine code.

Per engine: prefill (ms to score a ~100-token prompt), decode throughput (new tokens per second,
greedy, 32 tokens after a short prompt) with 1 and 4 concurrent streams (threads sharing one
model), and drift against the Hugging Face model on the golden prompts (teacher-forced on its
greedy continuations: next-token top-1 agreement and mean KL). Runners are the ones Triton serves.

    .venv/bin/python benchmarks/cpu_engines.py [--threads 2] [--new-tokens 32]

Ends with ``int4_decode_speedup=… int8_decode_speedup=… ort_fp32_vs_torch=… int4_top1=…``
(decode speedups are against ORT fp32, the same engine; ort_fp32_vs_torch is ORT fp32 decode
throughput over PyTorch's, 1 stream).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GATES_PROGRESS", "0")

import numpy as np

from gates.artifacts import ArtifactStore, ModelRef, tree_digest
from gates.config.engine import EngineSection
from gates.engines import ENGINES, load_runner
from gates.engines.torch_runner import TorchRunner
from gates.models.prompts import render_golden
from gates.models.sources import SMOLLM2, resolve_source
from gates.quality.golden import load_golden_suite

REPO = Path(__file__).resolve().parent.parent
LONG = " ".join(["The history of the city goes back many centuries, to a small village by the river."] * 6)


def decode_tokens_per_s(runner: Any, ids: list[int], new: int, streams: int) -> float:
    def one(_: int) -> int:
        return sum(1 for _ in runner.stream(ids, new))

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=streams) as pool:
        total = sum(pool.map(one, range(streams)))
    return total / (time.perf_counter() - started)


def prefill_ms(runner: Any, ids: list[int], repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        runner.score(ids[:-1], ids[-1:])
        times.append((time.perf_counter() - started) * 1000)
    return float(np.median(times))


def drift(runner: Any, reference: list[tuple[list[int], list[int], Any]]) -> tuple[float, float]:
    agree = total = 0
    kls = []
    for ids, continuation, ref in reference:
        got = runner.score(ids, continuation)
        agree += int((got.argmax(-1) == ref.argmax(-1)).sum())
        total += len(continuation)
        kls.append(float((np.exp(ref) * (ref - got)).sum(-1).mean()))
    return agree / max(total, 1), max(0.0, float(np.mean(kls)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--artifacts", type=Path, default=REPO / "artifacts")
    args = parser.parse_args()
    store = ArtifactStore(args.artifacts)
    base = resolve_source(SMOLLM2, Path, store, lambda s: print(s, file=sys.stderr)).path
    hf = TorchRunner(base, args.threads)
    golden = load_golden_suite(REPO / "golden_prompts" / "smollm2.jsonl", "smollm2")
    prompts = render_golden(hf.tokenizer, golden)
    reference = []
    for p in prompts:
        ids = hf.encode(p)
        tokens, _ = hf.generate(ids, 16)
        reference.append((ids, tokens, hf.score(ids, tokens)))
    engines: dict[str, Any] = {"torch fp32": hf}
    for label, role, precision in (
        ("ort fp32", "baseline", "int4"),
        ("ort int8", "candidate", "int8"),
        ("ort int4", "candidate", "int4"),
    ):
        cfg = EngineSection(backend="onnxruntime-genai", precision=precision, accuracy_level=4)  # type: ignore[arg-type]
        build = ENGINES["onnxruntime-genai"].build(store, ModelRef(role, base, tree_digest(base), "none", "real"), cfg)
        engines[label] = load_runner(build.serve_path, args.threads)
    short, long_ids = hf.encode("Tell me about the city."), hf.encode(LONG)
    rows = {}
    for label, runner in engines.items():
        decode_tokens_per_s(runner, short, 4, 1)  # warm-up
        rows[label] = {
            "prefill_ms": prefill_ms(runner, long_ids),
            "tps1": decode_tokens_per_s(runner, short, args.new_tokens, 1),
            "tps4": decode_tokens_per_s(runner, short, args.new_tokens, 4),
            **dict(zip(("top1", "kl"), drift(runner, reference), strict=True)),
        }
        print(label, rows[label], file=sys.stderr, flush=True)
    print(f"SmolLM2-135M-Instruct, {args.threads} threads, prefill {len(long_ids)} tokens, ", end="")
    print(f"decode {args.new_tokens} tokens")
    print(f"drift vs the Hugging Face model over {len(reference)} golden prompts x 16 tokens (teacher-forced)\n")
    print("| engine | prefill ms | decode tok/s (1 stream) | decode tok/s (4 streams) | top-1 | mean KL |")
    print("|---|---|---|---|---|---|")
    for label, r in rows.items():
        print(
            f"| {label} | {r['prefill_ms']:.1f} | {r['tps1']:.1f} | {r['tps4']:.1f} | {r['top1']:.3f} | {r['kl']:.4f} |"
        )
    fp32 = rows["ort fp32"]["tps1"]
    int4, int8 = rows["ort int4"]["tps1"] / fp32, rows["ort int8"]["tps1"] / fp32
    print(
        f"\nint4_decode_speedup={int4:.2f} int8_decode_speedup={int8:.2f} "
        f"ort_fp32_vs_torch={fp32 / rows['torch fp32']['tps1']:.2f} int4_top1={rows['ort int4']['top1']:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
