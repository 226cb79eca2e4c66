"""The torch-int8 engine against Model Optimizer's simulated INT8 and the float baseline, on CPU.

Numerics (builtin tiny Llama, golden prompts teacher-forced on the baseline's greedy
continuations): top-1 agreement and mean KL of the INT8 engine against the simulated artifact it
was built from (should be ~0: same grid, exact int32 accumulation) and against the float baseline.

Speed (a random Llama-shaped model large enough for GEMMs to dominate; ``--hidden``): one
prefill of ``--prefill`` tokens and one decode step with a KV cache, median of ``--repeats``,
float32 baseline vs simulated INT8 (what ``engine.backend: torch`` serves) vs the INT8 engine,
all in this process, one thread each.

    .venv/bin/python benchmarks/int8_engine.py [--hidden 1024 --layers 4 --prefill 128]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from common import compare, greedy_continuations, logprobs

from gates.config.schema import QuantizeSection
from gates.engines.int8_kernels import extract_int8_layers, install_int8_layers
from gates.models.loader import load_model
from gates.models.tiny import ensure_tiny_llama
from gates.optimize.quantize import calibration_batches, quantize, save_quantized
from gates.quality.golden import load_calibration, load_golden_suite

REPO = Path(__file__).resolve().parent.parent


def quantized_copy(src: Path, fmt: str, texts: list[str], out: Path) -> Path:
    model, tok = load_model(src)
    section = QuantizeSection(format=fmt, calibration="golden_prompts/calibration.jsonl", samples=len(texts))
    model = quantize(model, section, calibration_batches(tok, texts, 4, 64))
    out.mkdir(parents=True, exist_ok=True)
    save_quantized(model, tok, out)
    return out


def int8_engine(path: Path) -> Any:
    model, _ = load_model(path)
    return install_int8_layers(model, extract_int8_layers(model))


def timed(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up (allocations, weight packing)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def speed(model: Any, prefill: int, repeats: int, vocab: int) -> tuple[float, float]:
    ids = torch.randint(3, vocab, (1, prefill), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        past = model(input_ids=ids, use_cache=True).past_key_values
        step = ids[:, -1:]
        t_prefill = timed(lambda: model(input_ids=ids), repeats)

        def decode() -> None:  # the cache grows by one token a call: negligible next to the prefill
            model(input_ids=step, past_key_values=past, use_cache=True)

        t_decode = timed(decode, repeats)
    return t_prefill, t_decode


def random_llama(out: Path, hidden: int, layers: int, vocab: int) -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM

    tiny = ensure_tiny_llama(REPO / "artifacts")
    _, tok = load_model(tiny)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=hidden,
        intermediate_size=4 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=max(1, hidden // 64),
        num_key_value_heads=max(1, hidden // 64),
        max_position_embeddings=1024,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    del vocab
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--prefill", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--new-tokens", type=int, default=16)
    args = ap.parse_args()
    torch.set_num_threads(1)
    calib = load_calibration(REPO / "golden_prompts" / "calibration.jsonl")[:16]
    prompts = [g.row.prompt for g in load_golden_suite(REPO / "golden_prompts" / "demo.jsonl", "demo")]
    base_path = ensure_tiny_llama(REPO / "artifacts")
    base, tok = load_model(base_path)
    seqs = greedy_continuations(base, tok, prompts, args.new_tokens)
    lp_base = logprobs(base, seqs)
    rows = []
    worst_kl_engine_vs_sim = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        print(f"numerics: builtin tiny Llama, {len(prompts)} golden prompts x {args.new_tokens} tokens")
        print(f"{'format':<8} {'engine vs simulated top1/KL':>30} {'engine vs base top1/KL':>26} {'sim vs base':>20}")
        for fmt in ("int8_sq", "int8"):
            path = quantized_copy(base_path, fmt, calib, Path(tmp) / fmt)
            sim, _ = load_model(path)
            lp_sim, lp_eng = logprobs(sim, seqs), logprobs(int8_engine(path), seqs)
            e_s, e_b, s_b = compare(lp_eng, lp_sim), compare(lp_eng, lp_base), compare(lp_sim, lp_base)
            worst_kl_engine_vs_sim = max(worst_kl_engine_vs_sim, e_s[1])
            print(
                f"{fmt:<8} {e_s[0]:>20.4f} / {e_s[1]:.1e} {e_b[0]:>16.4f} / {e_b[1]:.1e} {s_b[0]:>10.4f} / {s_b[1]:.1e}"
            )
        big = random_llama(Path(tmp) / "big", args.hidden, args.layers, len(tok))
        big_q = quantized_copy(big, "int8_sq", calib, Path(tmp) / "big_int8_sq")
        vocab = len(tok)
        print(
            f"\nspeed: random Llama hidden {args.hidden}, ffn {4 * args.hidden}, {args.layers} layers, "
            f"1 thread, median of {args.repeats} (ms)"
        )
        print(f"{'model':<24} {'prefill ' + str(args.prefill):>12} {'decode step':>12}")
        for label, make in (
            ("float32 baseline", lambda: load_model(big)[0]),
            ("int8_sq simulated", lambda: load_model(big_q)[0]),
            ("int8_sq torch-int8", lambda: int8_engine(big_q)),
        ):
            model = make()
            t_p, t_d = speed(model, args.prefill, args.repeats, vocab)
            rows.append((label, t_p, t_d))
            print(f"{label:<24} {t_p:>12.2f} {t_d:>12.2f}")
            del model
    (_, fp, fd), (_, sp, sd), (_, ip, idd) = rows
    print(
        f"\nint8_engine_vs_float_prefill={fp / ip:.2f}x decode={fd / idd:.2f}x; "
        f"vs simulated prefill={sp / ip:.2f}x decode={sd / idd:.2f}x"
    )
    print(
        f"int8_prefill_speedup={fp / ip:.3f} int8_decode_speedup={fd / idd:.3f} "
        f"engine_vs_simulated_max_kl={worst_kl_engine_vs_sim:.2e}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
