"""The whole gate on a GPU: a bf16 baseline against an FP8 candidate on real FP8 kernels, served by Triton.

Needs CUDA with FP8 tensor cores (compute capability >= 8.9: L4, L40S, H100, H200, B200) and
nvidia-modelopt. Builds the tokenizer of builtin:tiny-llama and a Llama-shaped model of the given
shape (default ≈1.07B parameters) on the GPU, trains it briefly on the same public-domain corpus
(as ``benchmarks/gpu_ptq.py`` does: drift on a random model means little), saves it with
``save_pretrained`` as a local checkpoint, writes a pipeline (``engine.backend: torch-fp8``,
``engine.device: cuda``: the baseline served by PyTorch in bf16, the candidate quantized with
Model Optimizer's FP8 config, calibrated on the GPU and served on ``torch._scaled_mm``) and runs
``gates run`` on it — the ``tritonserver`` of the nvidia-pytriton wheel, locust load, golden-prompt
drift, the judge — once per number of concurrent users (1, 16, 64 by default; the model, the
candidate and the engines are built once and reused from the artifact store). It reads each
report.json and prints p50/p95 latency, inter-token latency, output tokens per second of model busy
time per arm (``load.capacity_tokens_per_s``: the arms share their users, so client-side tokens/s
are tied), the FP8/bf16 ratio of that and drift top-1 agreement, and ends with one line::

    fp8_vs_bf16_tokens_per_s_1=… fp8_vs_bf16_tokens_per_s_16=… fp8_vs_bf16_tokens_per_s_64=… top1=…

Served through Triton, each arm's streamed requests go to its engine's continuous-batching scheduler
(transformers' for the PyTorch engines, ``serve.batching: engine``, the default). The engines alone,
without Triton or HTTP (tokens/s per arm and FP8/bf16 at 1, 16 and 64 streams, top-1, batched vs
one-at-a-time answers): ``benchmarks/gpu_batching.py``.

Without CUDA (or below sm89) it prints why and exits 2. ``--reports DIR`` prints the same summary
of report.json files saved from an earlier run (``u1.json`` … or ``runs/u1/report.json`` …), anywhere.

    python3 benchmarks/gpu_gate.py [--users 1,16,64] [--duration 45] [--steps 150] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from gates.models.tiny import CORPUS, HYPER, train_tokenizer

REPO = Path(__file__).resolve().parent.parent

PIPELINE = """\
name: gpu-gate-u{users}
model:
  source: {model}
optimize:
  quantize:
    format: fp8
    calibration: golden_prompts/calibration.jsonl
    samples: 64
engine:
  backend: torch-fp8
  device: cuda
  dtype: bf16
  max_output_len: {new_tokens}
serve:
  startup_timeout_s: 900
load:
  users: {users}
  duration_s: {duration}
  warmup_s: 5
  max_new_tokens: {new_tokens}
  timeout_s: 300
golden:
  suites: [golden_prompts/demo.jsonl]
"""


def cuda_problem() -> str | None:
    """Why this machine cannot run the benchmark, or None."""
    try:
        import torch
    except ImportError as exc:
        return f"torch is not importable: {exc}"
    if not torch.cuda.is_available():
        return "no CUDA device is visible (torch.cuda.is_available() is False): run it on a GPU machine"
    major, minor = torch.cuda.get_device_capability()
    if (major, minor) < (8, 9):
        return f"FP8 GEMMs need compute capability >= 8.9; {torch.cuda.get_device_name()} is {major}.{minor}"
    return None


def build_model(out: Path, hidden: int, intermediate: int, layers: int, steps: int) -> str:
    """Build and briefly train a Llama-shaped model on the GPU; save it as a checkpoint. Returns a summary."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    dev = torch.device("cuda")
    torch.manual_seed(0)
    text = CORPUS.read_text()
    tok: Any = train_tokenizer(text, HYPER["vocab_size"])
    data = torch.tensor(tok(text.replace("\n", " "))["input_ids"], device=dev)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=16,
        num_key_value_heads=8,
        max_position_embeddings=512,
        tie_word_embeddings=False,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    model = LlamaForCausalLM(cfg).to(dev)
    params = sum(p.numel() for p in model.parameters())
    t0 = time.monotonic()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4)
    model.train()
    loss = torch.tensor(float("nan"))
    for _ in range(steps):
        starts = torch.randint(0, len(data) - 65, (16,), device=dev)
        batch = torch.stack([data[s : s + 64] for s in starts.tolist()])
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(input_ids=batch, labels=batch).loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    del opt
    model.eval().to("cpu").save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    del model
    torch.cuda.empty_cache()
    return (
        f"model: {params / 1e9:.2f}B parameters ({layers}x{hidden}, ffn {intermediate}), trained {steps} steps "
        f"in {time.monotonic() - t0:.0f}s, final loss {loss.item():.3f}; torch {torch.__version__}, "
        f"{torch.cuda.get_device_name()}"
    )


def run_gate(project: Path, users: int, model: Path, args: argparse.Namespace) -> dict[str, Any]:
    pipeline = project / "pipelines" / f"gpu-gate-u{users}.yaml"
    pipeline.write_text(PIPELINE.format(users=users, model=model, duration=args.duration, new_tokens=args.new_tokens))
    out = project / "runs" / f"u{users}"
    cmd = [sys.executable, "-m", "gates.cli", "run", str(pipeline), "--output", str(out)]
    cmd += ["--artifacts", str(project / "artifacts")]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=project, capture_output=True, text=True, timeout=args.timeout)
    wall = time.monotonic() - t0
    reports = sorted(out.rglob("report.json"))
    if not reports:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"gates run at {users} users exited {proc.returncode} without a report.json")
    report: dict[str, Any] = json.loads(reports[-1].read_text())
    report["_exit"], report["_wall_s"] = proc.returncode, wall
    return report


def arm_figures(report: dict[str, Any], arm: str) -> dict[str, float]:
    """One arm's figures from a report.json.

    ``tokens_per_s`` is output tokens per second of the arm's model *busy* time on the server
    (report key ``load.capacity_tokens_per_s``): both arms are sent interleaved requests by the
    same users, so their client-side tokens/s are tied to each other and cannot be compared.
    An arm without figures (no request completed in the window) has 0 tokens/s and NaN latencies.
    """
    load = report.get("load") or {}
    m = load.get(arm)
    if not m:
        return {"requests": 0, "p50": math.nan, "p95": math.nan, "itl_p50": math.nan, "tokens_per_s": 0.0}
    busy = (load.get("capacity_tokens_per_s") or {}).get(arm)
    return {
        "requests": m["requests"],
        "p50": m["latency_ms"]["p50"],
        "p95": m["latency_ms"]["p95"],
        "itl_p50": (m.get("itl_ms") or {}).get("p50", math.nan),
        "tokens_per_s": float(busy) if busy is not None else 0.0,
    }


def top1_of(report: dict[str, Any]) -> float:
    return float((report.get("drift") or {}).get("top1_agreement", math.nan))


def summarize(reports: dict[int, dict[str, Any]]) -> str:
    """The table and the closing ``key=value`` line for reports keyed by number of users."""
    lines = [
        f"{'users':>5} {'arm':5} {'requests':>8} {'p50 ms':>8} {'p95 ms':>8} {'ITL ms':>7} {'busy tok/s':>10} "
        f"{'fp8/bf16':>8} {'top-1':>6}"
    ]
    ratios, top1s = {}, []
    for u, r in sorted(reports.items()):
        b, c = arm_figures(r, "baseline"), arm_figures(r, "candidate")
        ratios[u] = c["tokens_per_s"] / b["tokens_per_s"] if b["tokens_per_s"] else math.nan
        top1s.append(top1_of(r))
        for arm, m in (("bf16", b), ("fp8", c)):
            tail = f" {ratios[u]:8.3f} {top1s[-1]:6.3f}" if arm == "fp8" else ""
            lines.append(
                f"{u:5d} {arm:5} {m['requests']:8d} {m['p50']:8.1f} {m['p95']:8.1f} {m['itl_p50']:7.2f} "
                f"{m['tokens_per_s']:10.1f}{tail}"
            )
        lines.append(f"      {r['verdict']}: {r.get('reason', '')}")
    finite = [t for t in top1s if t == t]
    kv = " ".join(f"fp8_vs_bf16_tokens_per_s_{u}={ratio:.3f}" for u, ratio in sorted(ratios.items()))
    lines.append(f"\n{kv} top1={min(finite) if finite else math.nan:.4f}")
    return "\n".join(lines)


def saved_reports(folder: Path) -> dict[int, dict[str, Any]]:
    """report.json files saved by an earlier run: ``runs/u<N>/report.json`` or ``u<N>.json``."""
    found: dict[int, dict[str, Any]] = {}
    for path in sorted(folder.rglob("*.json")):
        name = path.parent.name if path.name == "report.json" else path.stem
        if name.startswith("u") and name[1:].isdigit():
            found[int(name[1:])] = json.loads(path.read_text())
    if not found:
        raise SystemExit(f"gpu_gate: no u<N>.json or runs/u<N>/report.json under {folder}")
    return found


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", default="1,16,64")
    ap.add_argument("--duration", type=float, default=45.0)
    ap.add_argument("--new-tokens", type=int, default=16)
    ap.add_argument("--hidden", type=int, default=2048)
    ap.add_argument("--intermediate", type=int, default=8192)
    ap.add_argument("--layers", type=int, default=16)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds per gates run")
    ap.add_argument("--keep", type=Path, default=None, help="work here and keep it (default: a temp dir)")
    ap.add_argument("--reports", type=Path, default=None, help="only summarize the report.json files saved here")
    args = ap.parse_args()
    if args.reports is not None:
        print(summarize(saved_reports(args.reports)))
        return 0
    problem = cuda_problem()
    if problem is not None:
        print(f"gpu_gate: {problem}")
        return 2
    users = [int(u) for u in args.users.split(",")]
    work = args.keep or Path(tempfile.mkdtemp(prefix="gpu-gate-"))
    try:
        project = work / "project"
        shutil.copytree(REPO / "golden_prompts", project / "golden_prompts", dirs_exist_ok=True)
        (project / "pipelines").mkdir(parents=True, exist_ok=True)
        model = work / "model"
        if not (model / "config.json").is_file():
            print(build_model(model, args.hidden, args.intermediate, args.layers, args.steps), flush=True)
        reports = {}
        for u in users:
            reports[u] = r = run_gate(project, u, model, args)
            print(f"{u} users: verdict {r['verdict']} (exit {r['_exit']}, {r['_wall_s']:.0f}s)", flush=True)
        print(summarize(reports))
        return 0
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
