"""The operating-point, batching and output-length gates (gates/judge/points.py) and crossovers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from gates.config.schema import GatesSection
from gates.judge.decide import verdict_of
from gates.judge.points import (
    ArmBatches,
    PointEvidence,
    batching_gate,
    crossover,
    output_tokens_ratio_gate,
    ratio_interval,
)
from gates.judge.policy import Evidence
from gates.judge.verdict import Decision, GateResult, Status, decide

CFG = GatesSection(
    min_requests=30,
    exact_match_rate_min=None,
    top1_agreement_min=None,
    metrics=[{"name": "latency_ms", "direction": "increase", "allowed_effect": 0.05, "critical": True}],
)


def evidence(
    base_ms: float, cand_ms: float, n: int = 200, seed: int = 0, points: PointEvidence | None = None
) -> Evidence:
    rng = np.random.default_rng(seed)
    b = tuple(float(x) for x in rng.normal(base_ms, base_ms * 0.03, n))
    c = tuple(float(x) for x in rng.normal(cand_ms, cand_ms * 0.03, n))
    return Evidence(
        series={"latency_ms": (b, c)},
        baseline_error_rate=0.0,
        candidate_error_rate=0.0,
        candidate_requests=n,
        exact_match_rate=None,
        top1_agreement=None,
        mean_kl=None,
        golden_prompts=0,
        latency_simulated=False,
        points=points,
    )


BATCHED = {"baseline": ArmBatches(3.2, 4, 4), "candidate": ArmBatches(3.6, 4, 4)}


def test_both_points_are_judged_and_a_crossover_is_named_in_the_reason() -> None:
    # faster alone (weights read once per token), slower under load: the crossover the issue describes
    alone = evidence(100, 80, seed=1)
    points = PointEvidence(latency=alone, batches=BATCHED, concurrent=True)
    verdict = verdict_of(evidence(100, 130, seed=2, points=points), [], None, CFG)
    names = {g.name: g for g in verdict.gates}
    assert names["latency_ms shift@latency"].status == Status.PASS
    assert names["latency_ms shift"].status == Status.FAIL
    assert verdict.verdict == Decision.FAIL
    assert "crossover: latency_ms shift passes at the latency point and fails at the throughput point" in verdict.reason


def test_no_crossover_when_both_points_agree() -> None:
    points = PointEvidence(latency=evidence(100, 100, seed=3), batches=BATCHED, concurrent=True)
    verdict = verdict_of(evidence(100, 100, seed=4, points=points), [], None, CFG)
    assert verdict.verdict == Decision.PASS and "crossover" not in verdict.reason
    assert crossover(decide((GateResult("x", Status.PASS, None, "", ""),))) is None


def test_a_throughput_point_that_never_batched_is_inconclusive_naming_the_arm() -> None:
    queued = {"baseline": ArmBatches(1.0, 1, 4), "candidate": ArmBatches(3.0, 4, 4)}
    gate = batching_gate(PointEvidence(batches=queued, concurrent=True))
    assert gate.status == Status.INCONCLUSIVE
    assert "the baseline model never ran more than one sequence in a step (its engine may run 4)" in gate.reason
    verdict = verdict_of(evidence(100, 100, points=PointEvidence(batches=queued, concurrent=True)), [], None, CFG)
    assert verdict.verdict == Decision.INCONCLUSIVE and "batching" in verdict.reason


def test_batching_gate_passes_with_the_batch_sizes_and_steps_aside_where_it_cannot_apply() -> None:
    ok = batching_gate(PointEvidence(batches=BATCHED, concurrent=True))
    assert ok.status == Status.PASS and ok.observed == 4.0 and "baseline mean 3.20, max 4" in ok.reason
    assert batching_gate(PointEvidence(batches=BATCHED, concurrent=False)).status == Status.NOT_APPLIED
    off = batching_gate(PointEvidence(batches=None, concurrent=True, batching_off=True))
    assert off.status == Status.NOT_APPLIED and not off.blocking and "serve.batching: off" in off.reason
    remote = batching_gate(PointEvidence(batches=None, concurrent=True))
    assert remote.status == Status.NOT_APPLIED and "no engine metrics" in remote.reason


def test_a_terser_candidate_fails_output_tokens_ratio() -> None:
    same = tuple((16, 16) for _ in range(20))
    assert output_tokens_ratio_gate(PointEvidence(output_tokens=same), CFG).status == Status.PASS
    terse = tuple((16, 8 + i % 3) for i in range(20))
    gate = output_tokens_ratio_gate(PointEvidence(output_tokens=terse), CFG)
    assert gate.status == Status.FAIL and "terser" in gate.reason
    assert gate.interval is not None and gate.interval[1] < 0.9
    wide = ((16, 16), (16, 2), (16, 30), (16, 16))  # few prompts, wide spread: no decision
    assert output_tokens_ratio_gate(PointEvidence(output_tokens=wide), CFG).status == Status.INCONCLUSIVE
    assert output_tokens_ratio_gate(PointEvidence(output_tokens=((16, 16),)), CFG).status == Status.NO_DATA


def test_the_ratio_interval_covers_the_true_ratio_at_its_level() -> None:
    """Coverage over repeated draws: a 98% two-sided interval (confidence 0.99) should miss ~2%."""
    rng = np.random.default_rng(7)
    misses, trials = 0, 300
    for t in range(trials):
        base = rng.integers(8, 25, size=30)
        cand = np.maximum(1, np.round(base * 1.05 + rng.normal(0, 2, size=30))).astype(int)
        # the truth: E[cand]/E[base] for this generating process, estimated on a huge sample
        _, low, high = ratio_interval(tuple(zip(base.tolist(), cand.tolist(), strict=True)), 0.99, seed=t)
        misses += not (low <= 1.05 <= high)
    assert misses / trials < 0.06


@pytest.mark.parametrize("latency", [None, "x"])
def test_latency_point_gates_carry_the_suffix_and_the_cost_gate(latency: str | None) -> None:
    cfg = GatesSection(**{**CFG.model_dump(), "cost": {"usd_per_hour": 2.0}})
    alone = dataclasses.replace(evidence(100, 90, seed=5), baseline_tokens_per_s=50.0, candidate_tokens_per_s=60.0)
    points = PointEvidence(latency=alone if latency else None, batches=BATCHED, concurrent=True)
    verdict = verdict_of(evidence(100, 100, seed=6, points=points), [], None, cfg)
    names = [g.name for g in verdict.gates]
    assert ("cost_saving@latency" in names) == bool(latency)
    assert ("latency_ms shift@latency" in names) == bool(latency)


def test_output_token_pairs_match_the_two_requests_of_each_draw() -> None:
    from gates.loadgen.stats import output_token_pairs

    def rec(arm: str, pair: str, tokens: int, ok: bool = True, t: float = 5.0) -> dict[str, object]:
        return {"arm": arm, "pair": pair, "output_tokens": tokens, "ok": ok, "t_start_s": t}

    records = [
        rec("baseline", "0:1", 16),
        rec("candidate", "0:1", 12),
        rec("candidate", "1:1", 9),  # its baseline failed: not a pair
        rec("baseline", "1:1", 0, ok=False),
        rec("baseline", "0:2", 16, t=0.5),  # in the warm-up
        rec("candidate", "0:2", 16, t=0.6),
        rec("baseline", "", 16),  # records of an older worker carry no pair
    ]
    assert output_token_pairs(records, warmup_s=1.0) == ((16, 12),)


def test_a_saturated_client_at_the_latency_point_makes_the_run_inconclusive() -> None:
    """The latency window has its own load generator: its saturation is not hidden by the main window's."""
    starved = dataclasses.replace(evidence(100, 100, seed=8), generator_problem="the load generator was saturated")
    points = PointEvidence(latency=starved, batches=BATCHED, concurrent=True)
    verdict = verdict_of(evidence(100, 100, seed=9, points=points), [], None, CFG)
    assert verdict.verdict == Decision.INCONCLUSIVE
    assert "load_generator@latency (the load generator was saturated)" in verdict.reason


def test_the_ratio_interval_on_few_prompts_is_not_a_percentile_bootstrap() -> None:
    """At 6 prompts with a per-prompt length ratio spread of ±40% the percentile bootstrap missed
    the true ratio 11% of the time for a nominal 2% (98% two-sided at confidence 0.99); with
    Student-t beside it 6%."""
    rng = np.random.default_rng(3)
    base_all = rng.integers(4, 64, size=1_000_000)
    cand_all = np.maximum(1, np.round(base_all * rng.lognormal(0, 0.4, size=base_all.size)))
    truth = cand_all.sum() / base_all.sum()
    misses, trials = 0, 400
    for t in range(trials):
        base = rng.integers(4, 64, size=6)
        cand = np.maximum(1, np.round(base * rng.lognormal(0, 0.4, size=6))).astype(int)
        _, low, high = ratio_interval(tuple(zip(base.tolist(), cand.tolist(), strict=True)), 0.99, seed=t)
        misses += not (low <= truth <= high)
    assert misses / trials < 0.08, misses / trials
    gate = output_tokens_ratio_gate(PointEvidence(output_tokens=tuple((16, 16) for _ in range(20))), CFG)
    assert "Student-t" in gate.reason and "98% CI" in gate.reason
