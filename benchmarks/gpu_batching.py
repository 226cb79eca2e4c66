"""bf16 against torch-fp8 through the batching torch engine, on a GPU (issue 25, item 8).

Both arms are the PyTorch engines gates serves, each behind its own continuous-batching scheduler
(``TorchRunner.batching``: transformers' ``ContinuousBatchingManager``, paged attention): the
baseline in bf16 (``engine.backend: torch``, ``device: cuda``), the candidate quantized with Model
Optimizer's FP8 config and run on FP8 GEMMs (``torch-fp8``: ``torch._scaled_mm``). The model is the
Llama-shaped one ``benchmarks/gpu_gate.py`` builds and briefly trains on the GPU (≈1.07B parameters
by default). No Triton and no HTTP: ``gpu_gate.py`` measures the whole gate through Triton; this
measures the engines as they batch, closed loop, at each number of concurrent streams (1, 16, 64 by
default): each stream sends its next prompt (the demo golden prompts, in turn) when its previous
answer has finished, ``--requests`` times.

Per arm and number of streams: output tokens/s (all streams' tokens over the wall time), the mean
and largest number of sequences in a step (the scheduler's own count), and the FP8/bf16 ratio of
tokens/s. ``top1``: teacher-forced top-1 agreement of the FP8 engine with the bf16 engine on the
bf16 engine's greedy continuations (the gate's drift measure). ``batched_exact_<arm>``: the share
of prompts whose batched answer equals that engine's own one-at-a-time greedy answer. Last line::

    fp8_vs_bf16_tokens_per_s_1=… fp8_vs_bf16_tokens_per_s_16=… fp8_vs_bf16_tokens_per_s_64=… top1=…
    batched_exact_bf16=… batched_exact_fp8=…   (one line)

Without CUDA with FP8 tensor cores (compute capability >= 8.9) it prints why and exits 2.

    python3 benchmarks/gpu_batching.py [--streams 1,16,64] [--requests 4] [--new-tokens 64] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))  # gpu_gate's model builder and device check

WAIT_S = 600.0


def demo_prompts() -> list[str]:
    lines = (REPO / "golden_prompts" / "demo.jsonl").read_text().splitlines()
    return [json.loads(line)["prompt"] for line in lines if line.strip()]


def drive(scheduler: Any, prompts: list[list[int]], streams: int, per_stream: int, max_new: int) -> dict[str, Any]:
    """``streams`` closed-loop clients, ``per_stream`` requests each, through ``scheduler``.

    Returns tokens, seconds, tokens/s, the step statistics of the window and the first answer
    seen for each prompt (by index), and the errors (a failed request is counted, never hidden)."""
    from gates.engines.batching import Job

    answers: dict[int, list[int]] = {}
    errors: list[str] = []
    produced = [0]
    lock = threading.Lock()

    def client(k: int) -> None:
        for r in range(per_stream):
            index = (k * per_stream + r) % len(prompts)
            tokens: list[int] = []
            done = threading.Event()
            outcome: list[str | None] = [None]

            def finish(error: str | None, outcome: list[str | None] = outcome, done: threading.Event = done) -> None:
                outcome[0] = error
                done.set()

            scheduler.submit(Job(prompts[index], max_new, tokens.append, finish))
            if not done.wait(WAIT_S):
                outcome[0] = f"no answer in {WAIT_S:.0f}s"
            with lock:
                if outcome[0] is not None:
                    errors.append(outcome[0])
                else:
                    answers.setdefault(index, tokens)
                    produced[0] += len(tokens)

    before = scheduler.stats()
    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(streams)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    window = scheduler.stats().minus(before)
    return {
        "streams": streams,
        "tokens": produced[0],
        "seconds": seconds,
        "tokens_per_s": produced[0] / seconds if seconds > 0 else 0.0,
        "batch_size_mean": window.batch_size_mean,
        "batch_size_max": window.batch_size_max,
        "answers": answers,
        "errors": errors,
    }


def measure(runner: Any, prompts: list[list[int]], streams: list[int], per_stream: int, max_new: int) -> dict[int, Any]:
    """One arm at every number of streams, through one scheduler sized for the largest."""
    scheduler = runner.batching(max(streams))
    try:
        drive(scheduler, prompts[:2], 2, 1, 4)  # warm-up: first kernels, allocator
        return {s: drive(scheduler, prompts, s, per_stream, max_new) for s in streams}
    finally:
        scheduler.close()


def top1_agreement(base: Any, cand: Any, prompts: list[list[int]], max_new: int) -> float:
    """Teacher-forced top-1 agreement of ``cand`` with ``base`` on ``base``'s greedy continuations."""
    agree = total = 0
    for ids in prompts:
        tokens, _ = base.generate(ids, max_new)
        if not tokens:
            continue
        b, c = base.score(ids, tokens).argmax(-1), cand.score(ids, tokens).argmax(-1)
        agree += int((b == c).sum())
        total += len(tokens)
    return agree / total if total else float("nan")


def batched_exact(runner: Any, answers: dict[int, list[int]], prompts: list[list[int]], max_new: int) -> float:
    """Share of prompts whose batched answer is the engine's own one-at-a-time greedy answer."""
    if not answers:
        return float("nan")
    same = sum(answers[i] == list(runner.stream(prompts[i], max_new)) for i in answers)
    return same / len(answers)


def summarize(arms: dict[str, dict[int, Any]], top1: float, exact: dict[str, float]) -> str:
    lines = [
        f"{'streams':>7} {'arm':5} {'tokens':>7} {'seconds':>8} {'tok/s':>9} {'batch mean':>10} {'max':>4} "
        f"{'fp8/bf16':>8}"
    ]
    ratios = {}
    for s in sorted(arms["bf16"]):
        b, c = arms["bf16"][s], arms["fp8"][s]
        ratios[s] = c["tokens_per_s"] / b["tokens_per_s"] if b["tokens_per_s"] else float("nan")
        for arm, m in (("bf16", b), ("fp8", c)):
            mean = m["batch_size_mean"] if m["batch_size_mean"] is not None else float("nan")
            tail = f" {ratios[s]:8.3f}" if arm == "fp8" else ""
            lines.append(
                f"{s:7d} {arm:5} {m['tokens']:7d} {m['seconds']:8.2f} {m['tokens_per_s']:9.1f} {mean:10.2f} "
                f"{m['batch_size_max'] or 0:4d}{tail}" + (f"  errors: {len(m['errors'])}" if m["errors"] else "")
            )
    kv = " ".join(f"fp8_vs_bf16_tokens_per_s_{s}={r:.3f}" for s, r in sorted(ratios.items()))
    lines.append(f"\n{kv} top1={top1:.4f} batched_exact_bf16={exact['bf16']:.3f} batched_exact_fp8={exact['fp8']:.3f}")
    return "\n".join(lines)


def build_arms(work: Path, model: Path, samples: int) -> tuple[Any, Any]:
    """The bf16 torch engine and the torch-fp8 engine of ``model`` (FP8 calibrated on the GPU), as runners."""
    from gates.artifacts import ArtifactStore, ModelRef, tree_digest
    from gates.config.engine import EngineSection
    from gates.config.schema import QuantizeSection
    from gates.engines import ENGINES, load_runner
    from gates.models.loader import load_model
    from gates.optimize.quantize import calibration_batches, quantize, save_quantized
    from gates.quality.golden import load_calibration

    store = ArtifactStore(work / "artifacts")
    base_ref = ModelRef("baseline", model, tree_digest(model), "none", "real")
    base = ENGINES["torch"].build(store, base_ref, EngineSection(device="cuda", dtype="bf16"))
    fp8_dir = work / "fp8"
    if not (fp8_dir / "config.json").is_file():
        loaded, tok = load_model(model)
        section = QuantizeSection(format="fp8", calibration="golden_prompts/calibration.jsonl", samples=samples)
        texts = load_calibration(REPO / "golden_prompts" / "calibration.jsonl")[:samples]
        quantized = quantize(loaded, section, calibration_batches(tok, texts, 8, 128), device="cuda")
        save_quantized(quantized.to("cpu"), tok, fp8_dir)
    cand_ref = ModelRef("candidate", fp8_dir, tree_digest(fp8_dir), "fp8", "simulated")
    cand = ENGINES["torch-fp8"].build(store, cand_ref, EngineSection(backend="torch-fp8", device="cuda", dtype="bf16"))
    return load_runner(base.serve_path, 1), load_runner(cand.serve_path, 1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--streams", default="1,16,64")
    ap.add_argument("--requests", type=int, default=4, help="requests per stream at each point")
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=2048)
    ap.add_argument("--intermediate", type=int, default=8192)
    ap.add_argument("--layers", type=int, default=16)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--samples", type=int, default=64, help="FP8 calibration samples")
    ap.add_argument("--keep", type=Path, default=None, help="work here and keep it (default: a temp dir)")
    args = ap.parse_args()
    from gpu_gate import build_model, cuda_problem

    problem = cuda_problem()
    if problem is not None:
        print(f"gpu_batching: {problem}")
        return 2
    streams = [int(s) for s in args.streams.split(",")]
    work = args.keep or Path(tempfile.mkdtemp(prefix="gpu-batching-"))
    try:
        model = work / "model"
        if not (model / "config.json").is_file():
            print(build_model(model, args.hidden, args.intermediate, args.layers, args.steps), flush=True)
        bf16, fp8 = build_arms(work, model, args.samples)
        prompts = [bf16.encode(p) for p in demo_prompts()]
        arms = {}
        for name, runner in (("bf16", bf16), ("fp8", fp8)):
            arms[name] = measure(runner, prompts, streams, args.requests, args.new_tokens)
            print(f"{name}: measured at {', '.join(map(str, streams))} streams", flush=True)
        top1 = top1_agreement(bf16, fp8, prompts, args.new_tokens)
        largest = max(streams)
        exact = {
            name: batched_exact(runner, arms[name][largest]["answers"], prompts, args.new_tokens)
            for name, runner in (("bf16", bf16), ("fp8", fp8))
        }
        print(summarize(arms, top1, exact))
        return 0
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
