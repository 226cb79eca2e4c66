"""Every CPU quantization format on a real model (SmolLM2-135M-Instruct), measured through gates itself.

Per format, one gate run without the load stage (preflight, optimize, build, deploy on the real
tritonserver, drift on the served models): calibration (quantize) time, served drift against the
float32 baseline on golden_prompts/smollm2.jsonl (next-token top-1 agreement and KL, teacher-forced
on the baseline's tokens; exact match of whole continuations) and task accuracy per arm (each
row's regex on each arm's own answer). Both arms are the same run, the same server.

    .venv/bin/python benchmarks/real_model.py [--formats none,int8_wo,int8,int8_sq,int4_awq,w4a8_awq,fp8]

Ends with one line: ``<format>_top1=… <format>_kl=… <format>_task=… baseline_task=…``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("GATES_PROGRESS", "0")

from gates.config import load_pipeline
from gates.pipeline import run_pipeline
from gates.stages import BuildStage, DeployStage, DriftStage, OptimizeStage, PreflightStage

REPO = Path(__file__).resolve().parent.parent
FORMATS = "none,int8_wo,int8,int8_sq,int4_awq,w4a8_awq,fp8"
PIPELINE = """
name: bench-{name}
model:
  source: builtin:smollm2-135m-instruct
optimize:
  quantize:
    format: {fmt}
    calibration: golden_prompts/smollm2-calibration.jsonl
    samples: 24
    max_length: 64
    exclude: ["*lm_head*"]
golden:
  suites: [golden_prompts/smollm2.jsonl]
  max_new_tokens: 16
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--formats", default=FORMATS)
    parser.add_argument("--artifacts", type=Path, default=REPO / "artifacts")
    args = parser.parse_args()
    stages = (PreflightStage(), OptimizeStage(), BuildStage(), DeployStage(), DriftStage())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "pipelines").mkdir()
        os.symlink(REPO / "golden_prompts", Path(tmp) / "golden_prompts")
        for fmt in args.formats.split(","):
            path = Path(tmp) / "pipelines" / f"{fmt}.yaml"
            path.write_text(PIPELINE.format(name=fmt.replace("_", "-"), fmt=fmt))
            out = run_pipeline(
                load_pipeline(path), args.artifacts, Path(tmp) / "runs" / fmt, lambda s: None, stages=stages
            )
            report = json.loads(out.report_json.read_text()) if out.report_json else {}
            drift = report.get("drift") or {}
            steps = report.get("candidate", {}).get("steps") or []
            quantize = next((s for s in steps if s.get("kind") == "quantize"), {})
            rows.append(
                {
                    "format": fmt,
                    "error": report.get("error"),
                    "calibration_s": quantize.get("build_wall_s") if not quantize.get("reused") else "cached",
                    "top1": drift.get("top1_agreement"),
                    "kl": drift.get("mean_kl"),
                    "exact": drift.get("exact_match_rate"),
                    "baseline_task": drift.get("baseline_task_pass_rate"),
                    "candidate_task": drift.get("candidate_task_pass_rate"),
                }
            )
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    print(f"SmolLM2-135M-Instruct, {len(rows)} formats, golden_prompts/smollm2.jsonl (served by tritonserver)\n")
    print("| format | calibration s | top-1 | mean KL | exact match | task baseline | task candidate |")
    print("|---|---|---|---|---|---|---|")

    def num(v: object, spec: str) -> str:
        return format(v, spec) if isinstance(v, (int, float)) else str(v if v is not None else "—")

    for r in rows:
        if r["error"]:
            print(f"| {r['format']} | error: {str(r['error'])[:120]} | | | | | |")
            continue
        print(
            f"| {r['format']} | {num(r['calibration_s'], '.1f')} | {num(r['top1'], '.3f')} | {num(r['kl'], '.4f')} "
            f"| {num(r['exact'], '.2f')} | {num(r['baseline_task'], '.2f')} | {num(r['candidate_task'], '.2f')} |"
        )
    summary = []
    for r in rows:
        if not r["error"]:
            summary += [f"{r['format']}_top1={num(r['top1'], '.3f')}", f"{r['format']}_kl={num(r['kl'], '.4f')}"]
            summary.append(f"{r['format']}_task={num(r['candidate_task'], '.3f')}")
    base = next((r["baseline_task"] for r in rows if r["baseline_task"] is not None), None)
    summary.append(f"baseline_task={num(base, '.3f')}")
    print("\n" + " ".join(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
