"""The quality stage through the real CLI: tiny model, tritonserver, every quality kind in report.json."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gates.quality.lm_eval_tasks import lm_eval_available

pytestmark = pytest.mark.integration

PIPELINE = """
name: quality-spine
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
  duration_s: 4
  warmup_s: 1
  max_new_tokens: 4
  generator_max_lag_ms: 60
golden:
  suites: [golden_prompts/demo.jsonl, sampled.jsonl]
  max_new_tokens: 8
  multiple_choice: [mc.jsonl]
  perplexity: [held.txt]
  perplexity_max_tokens: 24
  lm_eval: {lm_eval}
  drift_corpus: [corpus.txt]
  drift_context: 24
  drift_decode_sample: 1
gates:
  top1_agreement_min: 0.5
  exact_match_rate_min: null
  min_requests: 5
  accuracy_drop_max: 0.05
  perplexity_increase_max: 0.5
"""


def kinds_by_name(report: dict[str, Any]) -> set[str]:
    """Names of the corpus entries in the quality table that are also gates of the verdict."""
    gates = {g["name"] for g in report["gates"]}
    return {q["name"] for q in report["quality"] if q["kind"] == "corpus" and q["name"] in gates}


def test_quality_kinds_reach_the_report(
    write_pipeline: Callable[..., Path], project: Path, artifacts_root: Path, tiny_model: Path, tmp_path: Path
) -> None:
    rows = [
        {"id": f"q{i}", "question": f"What comes after {i}?", "choices": [str(i + 1), str(i + 7)], "answer": 0}
        for i in range(6)
    ]
    (project / "mc.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    # sampled rows: 3 draws per arm at temperature 1, the task check is a letter the tiny model's
    # gibberish holds in some draws and not others
    sampled = [
        {"id": f"s{i}", "prompt": p, "regex": "e", "temperature": 1.0, "repeats": 3, "max_new_tokens": 4}
        for i, p in enumerate(["Four score and", "Shall I compare", "It was the best", "Call me"])
    ]
    (project / "sampled.jsonl").write_text("".join(json.dumps(r) + "\n" for r in sampled))
    (project / "held.txt").write_text(
        "Shall I compare thee to a summer's day?\n\nThou art more lovely and more temperate.\n"
    )
    # the drift corpus: 12 short documents, each cut into windows of 24 tokens
    line = "It was the best of times, it was the worst of times, it was the age of wisdom. "
    (project / "corpus.txt").write_text("\n---\n".join(f"Part {i}. " + line * 3 for i in range(12)) + "\n")
    tasks = "[]"
    if lm_eval_available():
        (project / "data.jsonl").write_text(
            "".join(json.dumps({"question": r["question"], "choices": r["choices"], "answer": 0}) + "\n" for r in rows)
        )
        (project / "tiny_mc.yaml").write_text(
            f"task: tiny_mc\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {project / 'data.jsonl'}\n"
            'test_split: test\noutput_type: multiple_choice\ndoc_to_text: "Question: {{question}}\\nAnswer:"\n'
            'doc_to_choice: "{{choices}}"\ndoc_to_target: answer\nmetric_list:\n  - metric: acc\n'
        )
        tasks = "[tiny_mc.yaml]"
    cfg = write_pipeline(PIPELINE.format(lm_eval=tasks))
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "gates.cli", "run", str(cfg), "--output", str(out), "--artifacts", str(artifacts_root)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert "[quality] done" in proc.stdout, proc.stdout + proc.stderr
    assert "warning: task checks" in proc.stdout or "warning: mc.jsonl" in proc.stdout  # far too few items
    report = json.loads((out / "report.json").read_text())
    kinds = {q["kind"] for q in report["quality"]}
    assert {"accuracy", "loglikelihood", "perplexity"} <= kinds
    # each gate once: without gates.drift_intervals the drift gates are the point estimates of the
    # gate table, so the quality table does not show a second top1_agreement with another status
    assert "drift" not in kinds and {g["name"] for g in report["gates"]} >= {"top1_agreement", "mean_kl"}
    assert ("lm_eval" in kinds) == lm_eval_available()
    for q in report["quality"]:
        assert {"name", "kind", "baseline", "candidate", "difference", "p_value", "detectable_effect", "status"} <= set(
            q
        )
    # the task checks include sampled rows: per-item pass rates over 3 draws, with a verdict
    task = next(q for q in report["quality"] if q["name"] == "task_accuracy")
    assert task["temperature"] == [1.0] and task["repeats"] == [3]
    assert task["status"] in ("pass", "fail", "inconclusive") and task["n"] >= 4
    assert "draws per arm" in task["reason"] and task["p_value"] is not None
    drift_rows = [json.loads(x) for x in (out / "drift.jsonl").read_text().splitlines()]
    draws = {r["id"]: (r["baseline_samples"], r["candidate_samples"]) for r in drift_rows if r["temperature"]}
    assert set(draws) == {"s0", "s1", "s2", "s3"} and all(len(b) == len(c) == 3 for b, c in draws.values())
    mc = next(q for q in report["quality"] if q["kind"] == "loglikelihood")
    # six items cannot certify a 0.05 margin: never a pass, and the gate is in the verdict
    assert mc["status"] in ("inconclusive", "fail") and mc["n"] == 6
    assert any(g["name"] == "multiple_choice_accuracy" for g in report["gates"])
    assert report["verdict"] != "PASS" and proc.returncode in (1, 3)
    md = (out / "report.md").read_text()
    assert "### Quality verdicts" in md and "detectable effect" in md
    # the drift corpus: both arms read every window in one pass, the figures and gates reach the report
    corpus = report["corpus"]
    assert corpus["path"] == "prefill" and corpus["documents"] == 12 and corpus["tokens"] >= 12 * 23
    assert corpus["kl_mean"]["low"] <= corpus["kl_mean"]["estimate"] <= corpus["kl_mean"]["high"]
    assert corpus["path_check"]["windows"] == 1 and set(corpus["tokens_per_s"]) == {"baseline", "candidate"}
    # the tiny model's torch engine scores in one pass both ways: the paths agree exactly
    assert corpus["path_check"]["top1_differ"] == {"baseline": 0, "candidate": 0}
    assert {"corpus_kl_mean", "corpus_kl_p99", "corpus_same_top1", "corpus_ppl_ratio"} <= kinds_by_name(report)
    assert "### Drift corpus" in md and (out / "corpus.jsonl").is_file()
    assert "3 draws per sampled item and arm" in md
