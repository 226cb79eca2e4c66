"""Every quantization format Model Optimizer runs here, on the builtin tiny Llama: cost and drift.

Per format: calibration (quantize) time, size on disk of the shipped artifact relative to the
baseline checkpoint (Model Optimizer state: simulated formats keep float weights, so this is
*not* the deployed size; the HF export column is), and drift against the baseline on the golden
prompts, teacher-forced on the baseline's greedy continuations: next-token top-1 agreement and
mean KL over the full vocabulary. The model served by gates is loaded back from the artifact,
so these are the numerics that get gated.

    .venv/bin/python benchmarks/optimize.py [--formats int8_sq,int8,fp8,int4_awq,w4a8_awq]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from common import greedy_continuations, logprobs

from gates.config.schema import QuantizeSection
from gates.models.loader import load_model
from gates.models.tiny import ensure_tiny_llama
from gates.optimize.quantize import calibration_batches, quantize, save_quantized
from gates.quality.golden import load_calibration, load_golden_suite

REPO = Path(__file__).resolve().parent.parent


def dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--formats", default="int8_sq,int8,fp8,int4_awq,w4a8_awq")
    ap.add_argument("--new-tokens", type=int, default=16)
    args = ap.parse_args()
    base_path = ensure_tiny_llama(REPO / "artifacts")
    base, tok = load_model(base_path)
    prompts = [g.row.prompt for g in load_golden_suite(REPO / "golden_prompts" / "demo.jsonl", "demo")]
    calib = load_calibration(REPO / "golden_prompts" / "calibration.jsonl")
    seqs = greedy_continuations(base, tok, prompts, args.new_tokens)
    ref = logprobs(base, seqs)
    base_size = dir_size(base_path)
    print(
        f"baseline: builtin:tiny-llama, {sum(p.numel() for p in base.parameters()):,} parameters, "
        f"{base_size / 1e6:.2f} MB on disk; {len(prompts)} golden prompts × {args.new_tokens} tokens\n"
    )
    print(f"{'format':10} {'calib s':>8} {'artifact/base':>14} {'HF export/base':>15} {'top-1':>7} {'mean KL':>9}")
    results = {}
    for fmt in args.formats.split(","):
        model, _ = load_model(base_path)
        section = QuantizeSection(format=fmt, calibration="golden_prompts/calibration.jsonl", samples=len(calib))
        t = time.monotonic()
        model = quantize(model, section, calibration_batches(tok, calib, 1, 128))
        calib_s = time.monotonic() - t
        with tempfile.TemporaryDirectory() as d:
            out = Path(d) / "artifact"
            out.mkdir()
            export_status = save_quantized(model, tok, out)
            hf = out / "hf_export"
            size = (dir_size(out) - (dir_size(hf) if hf.exists() else 0)) / base_size
            served, _ = load_model(out)  # what gates serves
            cand = logprobs(served, seqs)
            export = f"{dir_size(hf) / base_size:.2f}" if export_status == "ok" else "failed"
        top1 = float(torch.cat([(a.argmax(-1) == b.argmax(-1)).float() for a, b in zip(ref, cand, strict=True)]).mean())
        kl = float(torch.cat([(a.exp() * (a - b)).sum(-1) for a, b in zip(ref, cand, strict=True)]).mean())
        results[fmt] = (calib_s, size, top1, kl)
        print(f"{fmt:10} {calib_s:8.2f} {size:14.2f} {export:>15} {top1:7.3f} {kl:9.2e}")
    kv = " ".join(
        f"{f}_top1={r[2]:.4f} {f}_kl={r[3]:.3e} {f}_calib_s={r[0]:.2f} {f}_size={r[1]:.2f}" for f, r in results.items()
    )
    print(f"\n{kv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
