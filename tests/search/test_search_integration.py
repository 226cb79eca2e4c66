"""`gates search` end to end on the tiny model: real gate runs (modelopt, tritonserver, locust), the
recommendation, the report, the ledger, and a resumed search that measures nothing again."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from gates.ledger import Ledger

pytestmark = pytest.mark.integration

PIPELINE = """
name: tiny-search
model:
  source: builtin:tiny-llama
optimize:
  quantize:
    format: int8
    calibration: golden_prompts/calibration.jsonl
    samples: 16
load:
  operating_points: [throughput]   # one window: both points have their own tests (tests/judge/test_points.py)
  users: 2
  duration_s: 8
  warmup_s: 1
  max_new_tokens: 8
  generator_max_lag_ms: 60   # a shared 2-core CI machine: the self-check has its own test
golden:
  suites: [golden_prompts/demo.jsonl]
  max_new_tokens: 8
gates:
  top1_agreement_min: 0.95
  exact_match_rate_min: 0.8
  mean_kl_max: 0.05
  min_requests: 10
search:
  rungs: [0.5, 1.0]
  axes:
    # 8-bit weights keep the tiny model's answers; 2-bit weights break them
    optimize.quantize.quant_cfg:
      - {}
      - {"*weight_quantizer": {num_bits: 2, axis: 0}}
"""


def gates(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gates.cli", *args], capture_output=True, text=True, timeout=900)


def test_search_recommends_the_passing_candidate_and_resumes_without_measuring_again(
    write_pipeline: Callable[..., Path], artifacts_root: Path, tiny_model: Path, tmp_path: Path, no_leaked_servers: None
) -> None:
    cfg = write_pipeline(PIPELINE)
    out = tmp_path / "search"
    ledger = tmp_path / "ledger.sqlite"
    args = ["search", str(cfg), "--output", str(out), "--artifacts", str(artifacts_root), "--ledger", str(ledger)]
    proc = gates(args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((out / "report.json").read_text())
    s = report["search"]
    good, broken = s["candidates"]
    assert good["values"] == {"optimize.quantize.quant_cfg": {}}
    assert good["quality"] == "PASS" and good["verdict"] == "PASS" and good["fate"] == "cheapest"
    assert broken["quality"] == "FAIL" and broken["fate"] == "inferior" and broken["verdict"] == "FAIL"
    assert s["recommended"]["name"] == good["name"] and report["verdict"] == "PASS"
    # quality is exact (greedy drift on the same prompts): both settled on the first half of the load
    assert good["share_measured"] == broken["share_measured"] == 0.5 and report["time"]["ratio"] == 0.5
    assert good["name"] in s["front"]
    assert len(good["digest"]) == 64 and good["report"].endswith("report.html")
    assert (out / good["report"]).is_file()  # the plot's link reaches the candidate's own gate report
    html = (out / "report.html").read_text()
    assert f'href="{good["report"]}"' in html and "<svg" in html
    md = (out / "report.md").read_text()
    assert "**recommended**" in md and good["name"] in md
    ready = (out / "recommended.yaml").read_text()
    assert "search:" not in ready and "name: tiny-search" in ready
    ready_file = cfg.with_name("ready.yaml")  # a pipeline the user can put in a PR, in place of the search one
    ready_file.write_text(ready)
    cfg.rename(cfg.with_suffix(".searched"))
    check = gates(["validate", str(ready_file)])
    assert check.returncode == 0, check.stdout + check.stderr
    ready_file.unlink()
    cfg.with_suffix(".searched").rename(cfg)
    runs = {r.pipeline: r for r in Ledger(str(ledger)).runs()}
    assert runs[good["name"]].verdict == "PASS" and runs[good["name"]].digest == good["digest"]
    assert runs[broken["name"]].verdict == "FAIL"

    again = gates(args)  # resumed: every rung read back, nothing served, nothing recorded twice
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.count("measured before, read back") == 2 and "[deploy]" not in again.stdout
    assert json.loads((out / "report.json").read_text())["search"]["recommended"]["name"] == good["name"]
    assert len(Ledger(str(ledger)).runs()) == 2
