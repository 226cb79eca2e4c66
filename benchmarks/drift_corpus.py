"""Token-level drift on the shipped corpus through a local Triton, both arms served (issue 29).

SmolLM2-135M-Instruct built by gates' ONNX Runtime GenAI engine: the baseline in fp32, the
candidate in ``--precision`` (int8 weights with int8 compute by default; int4 for the broken
arm). Both are served by one local tritonserver (the gates Python model, one thread each) and
every window of ``golden_prompts/drift-corpus/`` is read in one teacher-forced pass by each arm
(gates/quality/corpus_scoring.py, the path the quality stage runs). Prints scored tokens/s per
arm, the corpus figures with their intervals by document, and the prefill-vs-decode check.

    flock /work/wt/heavy.lock nice -n 10 .venv/bin/python benchmarks/drift_corpus.py [--precision int8]
        [--context 512] [--max-windows N] [--decode-sample 2]

Last line: ``corpus_tokens=<scored tokens per arm> corpus_s=<seconds per arm, the slower>
kl_mean=… kl_p99=… same_top1=…``. Goal (issue 29): ≥ 100,000 tokens per arm, ≤ 300 s per arm.
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
from gates.quality.corpus_scoring import score_windows
from gates.quality.corpus_stats import figures, positions
from gates.triton.repository import write_model
from gates.triton.server import TritonServer

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "golden_prompts" / "drift-corpus" / "shakespeare.txt"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--precision", default="int8", choices=["int8", "int4"])
    ap.add_argument("--accuracy-level", type=int, default=4)
    ap.add_argument("--context", type=int, default=512)
    ap.add_argument("--top-k", type=int, default=20)
    ap.add_argument("--max-windows", type=int, default=None)
    ap.add_argument("--decode-sample", type=int, default=2)
    ap.add_argument("--confidence", type=float, default=0.95, help="one-sided; intervals are two-sided at 1-2(1-c)")
    ap.add_argument("--artifacts", type=Path, default=REPO / "artifacts")
    args = ap.parse_args()

    def log(s: str) -> None:
        print(s, file=sys.stderr)

    store = ArtifactStore(args.artifacts)
    base = resolve_source(SMOLLM2, Path, store, log).path
    engine = ENGINES["onnxruntime-genai"]
    cfg = EngineSection(
        backend="onnxruntime-genai", precision=args.precision, accuracy_level=args.accuracy_level, block_size=32
    )
    digest = tree_digest(base)
    builds = {
        arm: engine.build(store, ModelRef(arm, base, digest, "none", "real"), cfg).serve_path
        for arm in ("baseline", "candidate")
    }
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base, local_files_only=True)
    docs = load_corpus(CORPUS, CORPUS.name, "--corpus")
    windows = cut_windows(tokenizer, docs, args.context, args.max_windows)
    print(
        f"SmolLM2-135M-Instruct, ONNX Runtime GenAI fp32 vs {args.precision} (accuracy_level "
        f"{args.accuracy_level}), one thread per arm; corpus {CORPUS.name}: {len(docs)} documents, "
        f"{len(windows)} windows of ≤ {args.context} tokens; machine: {os.cpu_count()} CPUs"
    )
    work = Path(tempfile.mkdtemp(prefix="gates-corpus-"))
    models = {"baseline": "baseline", "candidate": "candidate"}
    for arm, path in builds.items():
        write_model(work / "models", models[arm], path, threads=1)
    with TritonServer(work / "models", work) as server:
        for name in models.values():
            server.load_model(name)
        t0 = time.perf_counter()
        scores = score_windows(
            server.grpc_url, models, windows, args.top_k, server.check_alive, args.decode_sample
        )
        wall = time.perf_counter() - t0
    level = 1 - 2 * (1 - args.confidence)
    f = figures(positions(scores.windows), args.top_k, level)
    for arm, s in scores.seconds.items():
        print(f"{arm:9}: {f.tokens} tokens in {s:.1f} s of requests = {f.tokens / s:.0f} scored tokens/s")
    print(f"wall (both arms side by side, plus the decode sample): {wall:.1f} s")
    print(f"intervals: {level:.0%} two-sided, cluster bootstrap over {f.documents} documents")

    def iv(e: object) -> str:
        est, low, high = (getattr(e, k) for k in ("estimate", "low", "high"))
        return f"{est:.4g} ({low:.4g} to {high:.4g})"

    print(f"mean KL ≥ {iv(f.kl_mean)} ± {f.kl_mean_se:.2g} (jackknife SE), top-{f.top_k} + rest")
    for name, e in f.kl_percentiles.items():
        print(f"KL {name}: {iv(e)}")
    print(f"KL max: {f.kl_max:.4g}; baseline mass outside top-{f.top_k}: {f.tail_mass}")
    print(
        f"Δp true token: mean {iv(f.dp_mean)}, RMS {f.dp_rms:.4g}, p1 {f.dp_p1:.4g}, p99 {f.dp_p99:.4g}, "
        f"<0 on {f.dp_negative:.3f}, >0 on {f.dp_positive:.3f}, sign test over documents p={f.dp_sign_p:.3g}"
    )
    print(f"same top-1: {iv(f.same_top1)}")
    print(f"perplexity baseline {iv(f.ppl_baseline)}, candidate {iv(f.ppl_candidate)}, ratio {iv(f.ppl_ratio)}")
    print(f"expected draft acceptance Σmin(p,q): {f.accept_low:.4f} to {f.accept_high:.4f}")
    print("KL histogram (from, to, positions, cumulative share):")
    for lo, hi, n, c in f.histogram:
        print(f"  [{lo:g}, {hi:g}): {n:7d}  {c:.4f}")
    if scores.path_check is not None:
        pc = scores.path_check
        print(
            f"prefill vs decode on {pc.windows} windows × ≤128 tokens ({pc.positions} positions): top-1 differs "
            f"{pc.top1_differ}; KL(prefill‖decode) {pc.kl_paths}; arms' KL prefill {pc.kl_prefill:.4g} vs decode "
            f"{pc.kl_decode:.4g}; same top-1 prefill {pc.same_top1_prefill:.4f} vs decode {pc.same_top1_decode:.4f}"
        )
    slow = max(scores.seconds.values())
    p99 = f.kl_percentiles["p99"].estimate
    print(
        f"corpus_tokens={f.tokens} corpus_s={slow:.1f} kl_mean={f.kl_mean.estimate:.5f} kl_p99={p99:.5f} "
        f"same_top1={f.same_top1.estimate:.4f}"
    )


if __name__ == "__main__":
    main()
