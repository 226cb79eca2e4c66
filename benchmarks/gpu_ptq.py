"""Model Optimizer PTQ on a GPU, on a Llama-shaped model of ≥1B parameters: time and drift per format.

Needs CUDA and nvidia-modelopt. Builds the tokenizer of builtin:tiny-llama, a Llama with the
given shape (default ≈1.07B parameters), trains it briefly on the same public-domain corpus so
that its next-token distributions are peaked (drift on a random model means little), then for
each format: quantizes a copy with gates' own config builder (our format names, lm_head kept in
high precision), calibrated on the corpus; measures quantize time, next-token top-1 agreement
and KL divergence (full vocabulary) against the bf16 model on teacher-forced greedy
continuations of held-out prompts, and tries `export_hf_checkpoint`.

    python3 benchmarks/gpu_ptq.py [--formats fp8,int4_awq] [--steps 150]
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
import tempfile
import time
import traceback

import torch


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--formats", default="fp8,int4_awq,int8_sq,w4a8_awq,nvfp4")
    ap.add_argument("--hidden", type=int, default=2048)
    ap.add_argument("--intermediate", type=int, default=8192)
    ap.add_argument("--layers", type=int, default=16)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--new-tokens", type=int, default=24)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("needs CUDA")
        return 2
    import modelopt.torch.quantization as mtq
    from transformers import LlamaConfig, LlamaForCausalLM

    from gates.config.schema import QuantizeSection
    from gates.models.tiny import CORPUS, HYPER, train_tokenizer
    from gates.optimize.quantize import build_quant_config

    dev = torch.device("cuda")
    torch.manual_seed(0)
    text = CORPUS.read_text()
    tok = train_tokenizer(text, HYPER["vocab_size"])
    sentences = [s.strip() for s in re.split(r"(?<=[.?!:;])\s+", text.replace("\n", " ")) if len(s.strip()) > 30]
    held_out, calib = sentences[::4][:20], [s for i, s in enumerate(sentences) if i % 4]
    data = torch.tensor(tok(text.replace("\n", " "))["input_ids"], device=dev)

    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=args.hidden,
        intermediate_size=args.intermediate,
        num_hidden_layers=args.layers,
        num_attention_heads=16,
        num_key_value_heads=8,
        max_position_embeddings=512,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(cfg).to(dev)
    params = sum(p.numel() for p in model.parameters())
    t0 = time.monotonic()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4)
    model.train()
    for _ in range(args.steps):
        starts = torch.randint(0, len(data) - 65, (16,), device=dev)
        batch = torch.stack([data[s : s + 64] for s in starts.tolist()])
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(input_ids=batch, labels=batch).loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    del opt
    train_s = time.monotonic() - t0
    base = model.to(torch.bfloat16).eval()
    print(
        f"model: {params / 1e9:.2f}B parameters ({args.layers}×{args.hidden}, ffn {args.intermediate}), "
        f"trained {args.steps} steps in {train_s:.0f}s, final loss {float(loss):.3f}; torch {torch.__version__}, "
        f"{torch.cuda.get_device_name()}"
    )

    # the baseline's greedy continuations, scored teacher-forced by every candidate
    seqs = []
    with torch.no_grad():
        for p in held_out:
            ids = tok(p, return_tensors="pt")["input_ids"].to(dev)
            out = base.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=args.new_tokens,
                do_sample=False,
                pad_token_id=tok.pad_token_id,
            )
            seqs.append((out, ids.shape[1]))

    def logprobs(m: object) -> list[torch.Tensor]:
        res = []
        with torch.no_grad():
            for out, n in seqs:
                logits = m(input_ids=out).logits[0, n - 1 : -1].float()  # type: ignore[operator]
                res.append(torch.log_softmax(logits, -1))
        return res

    ref = logprobs(base)
    calib_batches = [tok(s, return_tensors="pt").to(dev) for s in calib[:64]]

    def loop(m: object) -> None:
        with torch.no_grad():
            for b in calib_batches:
                m(**b)  # type: ignore[operator]

    rows = []
    for fmt in args.formats.split(","):
        row = {"format": fmt}
        try:
            m = copy.deepcopy(base)
            qcfg = build_quant_config(QuantizeSection(format=fmt, calibration="corpus", samples=64))
            torch.cuda.synchronize()
            t = time.monotonic()
            m = mtq.quantize(m, qcfg, loop)
            torch.cuda.synchronize()
            row["quantize_s"] = time.monotonic() - t
            cand = logprobs(m)
            top1 = torch.cat([(a.argmax(-1) == b.argmax(-1)).float() for a, b in zip(ref, cand, strict=True)]).mean()
            kl = torch.cat([(a.exp() * (a - b)).sum(-1) for a, b in zip(ref, cand, strict=True)]).mean()
            row.update(top1=float(top1), kl=float(kl))
            try:
                from modelopt.torch.export import export_hf_checkpoint

                with tempfile.TemporaryDirectory() as d:
                    export_hf_checkpoint(m, dtype=torch.bfloat16, export_dir=d)
                row["export"] = "ok"
            except Exception as exc:
                row["export"] = f"{type(exc).__name__}: {str(exc)[:60]}"
            del m
            torch.cuda.empty_cache()
        except Exception as exc:
            row["error"] = f"{type(exc).__name__}: {str(exc)[:120]}"
            traceback.print_exc(limit=3)
        rows.append(row)

    print(f"\n{'format':10} {'quantize s':>10} {'top-1':>7} {'mean KL':>9}  export")
    for r in rows:
        if "error" in r:
            print(f"{r['format']:10} failed: {r['error']}")
        else:
            print(f"{r['format']:10} {r['quantize_s']:10.1f} {r['top1']:7.3f} {r['kl']:9.2e}  {r['export']}")
    kv = " ".join(
        f"{r['format']}_top1={r['top1']:.4f} {r['format']}_kl={r['kl']:.3e} {r['format']}_s={r['quantize_s']:.1f}"
        for r in rows
        if "error" not in r
    )
    print(f"\nparams_b={params / 1e9:.3f} {kv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
