"""Prune, distill and the chained optimize stage on the tiny model (no server needed)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from gates.config import load_pipeline
from gates.models.loader import load_model
from gates.optimize.distill import distill
from gates.optimize.prune import prune_mlp
from gates.optimize.quantize import calibration_batches
from gates.pipeline import run_pipeline
from gates.quality.golden import load_calibration
from gates.stages.optimize import OptimizeStage
from gates.stages.preflight import PreflightStage

REPO = Path(__file__).resolve().parents[2]


def _data(tok: Any) -> tuple[list[Any], list[Any]]:
    texts = load_calibration(REPO / "golden_prompts" / "calibration.jsonl")
    train = [t for i, t in enumerate(texts) if i % 5]
    held = [t for i, t in enumerate(texts) if i % 5 == 0]
    return calibration_batches(tok, train, 4, 64), calibration_batches(tok, held, 4, 64)


def _kl(teacher: Any, student: Any, batches: list[Any]) -> float:
    total = n = 0.0
    with torch.no_grad():
        for b in batches:
            t = torch.log_softmax(teacher(**b).logits, -1)
            s = torch.log_softmax(student(**b).logits, -1)
            kl = (t.exp() * (t - s)).sum(-1)[b["attention_mask"].bool()]
            total += float(kl.sum())
            n += kl.numel()
    return total / n


def test_pruning_shrinks_by_the_configured_share_and_reloads(tiny_model: Path, tmp_path: Path) -> None:
    model, tok = load_model(tiny_model)
    train, _ = _data(tok)
    mlp_before = sum(p.numel() for layer in model.model.layers for p in layer.mlp.parameters())
    info = prune_mlp(model, train, 0.75)
    mlp_after = sum(p.numel() for layer in model.model.layers for p in layer.mlp.parameters())
    assert info["ffn_width_after"] == 192 and model.config.intermediate_size == 192
    assert mlp_after == pytest.approx(0.75 * mlp_before, rel=0.01)
    assert info["params_after"] < info["params_before"]
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    again, _ = load_model(tmp_path)
    ids = tok("We the People", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert torch.equal(again(input_ids=ids).logits, model(input_ids=ids).logits)


def test_distillation_lowers_held_out_kl_to_the_teacher(tiny_model: Path) -> None:
    teacher, tok = load_model(tiny_model)
    train, held = _data(tok)
    student = copy.deepcopy(teacher)
    prune_mlp(student, train, 0.5)
    before = _kl(teacher, student, held)
    student, losses = distill(student, teacher, train, steps=200, lr=1e-4, temperature=2.0, alpha=1.0)
    after = _kl(teacher, student, held)
    assert losses[-1] < losses[0]
    assert after < 0.7 * before, (before, after)


CHAINED = """
name: chain
model:
  source: builtin:tiny-llama
optimize:
  prune: {ffn_ratio: 0.5, calibration: golden_prompts/calibration.jsonl}
  distill: {data: golden_prompts/calibration.jsonl, steps: 20}
  quantize: {format: int8_sq, calibration: golden_prompts/calibration.jsonl, samples: 8}
golden:
  suites: [golden_prompts/demo.jsonl]
"""


def test_chain_is_cached_step_by_step_and_corruption_is_rebuilt(
    write_pipeline: Callable[..., Path], artifacts_root: Path, tiny_model: Path, tmp_path: Path
) -> None:
    stages = (PreflightStage(), OptimizeStage())
    pf = load_pipeline(write_pipeline(CHAINED))
    first = run_pipeline(pf, artifacts_root, tmp_path / "a", lambda s: None, stages=stages)
    r1 = json.loads(first.report_json.read_text())  # type: ignore[union-attr]
    assert [s["kind"] for s in r1["candidate"]["steps"]] == ["prune", "distill", "quantize"]
    assert r1["candidate"]["recipe"] == "pruned0.5+distilled+int8_sq"

    second = run_pipeline(pf, artifacts_root, tmp_path / "b", lambda s: None, stages=stages)
    r2 = json.loads(second.report_json.read_text())  # type: ignore[union-attr]
    assert r2["candidate"]["reused"] is True and all(s["reused"] for s in r2["candidate"]["steps"])
    assert r2["candidate"]["digest"] == r1["candidate"]["digest"]
    assert r2["durations_s"]["optimize"] < r1["durations_s"]["optimize"]

    # corrupt the distilled student's weights: that step and the one after it rebuild
    distilled = Path(r1["candidate"]["path"]).parents[1] / "model-distilled"
    (weights,) = list(distilled.glob("*/model.safetensors"))
    weights.write_bytes(weights.read_bytes()[:-16] + b"\0" * 16)
    third = run_pipeline(pf, artifacts_root, tmp_path / "c", lambda s: None, stages=stages)
    r3 = json.loads(third.report_json.read_text())  # type: ignore[union-attr]
    assert [s["reused"] for s in r3["candidate"]["steps"]] == [True, False, True]
    assert r3["candidate"]["digest"] == r1["candidate"]["digest"], "the rebuild is deterministic"
    assert list(distilled.glob("*.corrupt-*"))
