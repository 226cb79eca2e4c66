"""Token-level drift on the shipped corpus through a local Triton, both arms served (issue 29).

SmolLM2-135M-Instruct built by gates' ONNX Runtime GenAI engine: the baseline in fp32, the
candidate in ``--precision`` (int8 weights with int8 compute by default; int4 for the broken
arm). Both are served by one local tritonserver (the gates Python model, one thread each;
``--arm-after-arm``: all the cores each, one arm reading after the other) and
every window of ``golden_prompts/drift-corpus/`` is read in one teacher-forced pass by each arm
(gates/quality/corpus_scoring.py, the path the quality stage runs). Prints scored tokens/s per
arm, the corpus figures with their intervals by document, and the prefill-vs-decode check.

    flock /work/wt/heavy.lock nice -n 10 .venv/bin/python benchmarks/drift_corpus.py [--precision int8]
        [--context 512] [--max-windows N] [--decode-sample 2] [--arm-after-arm]

Several ``--precision`` values share one baseline reading (the fp32 arm reads the corpus once).
Last line (the last precision): ``corpus_tokens=<scored tokens per arm> corpus_s=<seconds per arm,
the slower> kl_mean=… kl_p99=… same_top1=…``. Goal (issue 29): ≥ 100,000 tokens per arm, ≤ 300 s per arm.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GATES_PROGRESS", "0")

from gates.artifacts import ArtifactStore, ModelRef, tree_digest
from gates.config.engine import EngineSection
from gates.engines import ENGINES
from gates.models.sources import SMOLLM2, resolve_source
from gates.quality.corpus import cut_windows, load_corpus
from gates.quality.corpus_scoring import CorpusScores, score_windows
from gates.quality.corpus_stats import Estimate, figures, positions
from gates.triton.client import Generation
from gates.triton.repository import write_model
from gates.triton.server import TritonServer

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "golden_prompts" / "drift-corpus" / "shakespeare.txt"


def report(label: str, scores: CorpusScores, top_k: int, level: float, seconds: dict[str, float]) -> str:
    """Print one candidate's figures; return its last-line fields."""
    f = figures(positions(scores.windows), top_k, level)
    print(f"\n== {label} ==")
    for arm, s in seconds.items():
        print(f"{arm:9}: {f.tokens} tokens in {s:.1f} s of requests = {f.tokens / s:.0f} scored tokens/s")
    print(f"intervals: {level:.0%} two-sided, cluster bootstrap over {f.documents} documents")

    def iv(e: Estimate) -> str:
        return f"{e.estimate:.4g} ({e.low:.4g} to {e.high:.4g})"

    print(f"mean KL ≥ {iv(f.kl_mean)} ± {f.kl_mean_se:.2g} (jackknife SE), top-{f.top_k} + rest")
    for name, e in f.kl_percentiles.items():
        print(f"KL {name}: {iv(e)}")
    tail = ", ".join(f"{k} {v:.3g}" for k, v in f.tail_mass.items())
    print(f"KL max: {f.kl_max:.4g}; baseline mass outside top-{f.top_k}: {tail}")
    print(
        f"Δp true token: mean {iv(f.dp_mean)}, RMS {f.dp_rms:.4g}, p1 {f.dp_p1:.4g}, p99 {f.dp_p99:.4g}, "
        f"<0 on {f.dp_negative:.3f}, >0 on {f.dp_positive:.3f}, sign test over documents p={f.dp_sign_p:.3g}"
    )
    print(f"same top-1: {iv(f.same_top1)}")
    print(f"perplexity baseline {iv(f.ppl_baseline)}, candidate {iv(f.ppl_candidate)}, ratio {iv(f.ppl_ratio)}")
    print(f"expected draft acceptance Σmin(p,q): {f.accept_low:.4f} to {f.accept_high:.4f}")
    print("KL histogram [from, to): positions, cumulative share")
    for lo, hi, n, c in f.histogram:
        print(f"  [{lo:g}, {hi:g}): {n:7d}  {c:.4f}")
    if scores.path_check is not None:
        pc = scores.path_check
        print(
            f"prefill vs decode on {pc.windows} windows × ≤128 tokens ({pc.positions} positions): top-1 differs "
            f"{pc.top1_differ}; KL(prefill‖decode) "
            + ", ".join(f"{a} {v:.3g}" for a, v in pc.kl_paths.items())
            + f"; arms' mean KL prefill {pc.kl_prefill:.4g} vs decode {pc.kl_decode:.4g}; same top-1 prefill "
            f"{pc.same_top1_prefill:.4f} vs decode {pc.same_top1_decode:.4f}"
        )
    slow = max(seconds.values())
    p99 = f.kl_percentiles["p99"].estimate
    return (
        f"corpus_tokens={f.tokens} corpus_s={slow:.1f} kl_mean={f.kl_mean.estimate:.5f} kl_p99={p99:.5f} "
        f"same_top1={f.same_top1.estimate:.4f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--precision", nargs="+", default=["int8"], choices=["int8", "int4"])
    ap.add_argument("--accuracy-level", type=int, default=4)
    ap.add_argument("--context", type=int, default=512)
    ap.add_argument("--top-k", type=int, default=20)
    ap.add_argument("--max-windows", type=int, default=None)
    ap.add_argument("--decode-sample", type=int, default=2)
    ap.add_argument(
        "--arm-after-arm",
        action="store_true",
        help="serve each model on all the cores and read the corpus with one arm, then the other",
    )
    ap.add_argument("--confidence", type=float, default=0.95, help="one-sided; intervals are two-sided at 1-2(1-c)")
    ap.add_argument("--artifacts", type=Path, default=REPO / "artifacts")
    args = ap.parse_args()

    def log(s: str) -> None:
        print(s, file=sys.stderr)

    store = ArtifactStore(args.artifacts)
    base = resolve_source(SMOLLM2, Path, store, log).path
    engine = ENGINES["onnxruntime-genai"]
    digest = tree_digest(base)
    builds = {}
    for name in ("fp32", *args.precision):
        cfg = EngineSection(
            backend="onnxruntime-genai",
            precision=name if name != "fp32" else "int8",
            accuracy_level=args.accuracy_level,
            block_size=32,
        )
        role = "baseline" if name == "fp32" else "candidate"
        builds[name] = engine.build(store, ModelRef(role, base, digest, "none", "real"), cfg).serve_path
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base, local_files_only=True)
    threads = (os.cpu_count() or 1) if args.arm_after_arm else 1
    how = "arm after arm" if args.arm_after_arm else "arms side by side"
    docs = load_corpus(CORPUS, CORPUS.name, "--corpus")
    windows = cut_windows(tokenizer, docs, args.context, args.max_windows)
    print(
        f"SmolLM2-135M-Instruct, ONNX Runtime GenAI fp32 vs {' and '.join(args.precision)} (accuracy_level "
        f"{args.accuracy_level}), {threads} thread(s) per served model, "
        f"{how}; corpus {CORPUS.name}: {len(docs)} documents, "
        f"{len(windows)} windows of ≤ {args.context} tokens; machine: {os.cpu_count()} CPUs"
    )
    work = Path(tempfile.mkdtemp(prefix="gates-corpus-"))
    for name, path in builds.items():
        write_model(work / "models", name, path, threads=threads)
    level = 1 - 2 * (1 - args.confidence)
    last = ""
    with TritonServer(work / "models", work) as server:
        for name in builds:
            server.load_model(name)
        answers: tuple[Generation, ...] = ()
        base_seconds = 0.0
        for name in args.precision:
            t0 = time.perf_counter()
            scores = score_windows(
                server.grpc_url,
                {"baseline": "fp32", "candidate": name},
                windows,
                args.top_k,
                server.check_alive,
                args.decode_sample,
                answers,
                arm_after_arm=args.arm_after_arm,
            )
            print(f"\nfp32 vs {name}: {time.perf_counter() - t0:.1f} s wall ({how}, decode sample included)")
            if not answers:  # the baseline's answers serve every later candidate: it is read once
                answers, base_seconds = scores.baseline, scores.seconds["baseline"]
            seconds = {"baseline": base_seconds, "candidate": scores.seconds["candidate"]}
            last = report(f"fp32 vs {name}", scores, args.top_k, level, seconds)
    print(last)


if __name__ == "__main__":
    main()
