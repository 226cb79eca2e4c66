"""Goodput at SLO tiers per arm (load.goodput_tiers): which requests meet a tier, and the config's rules."""

from __future__ import annotations

import math
from typing import Any

import pytest
from pydantic import ValidationError

from gates.config.goodput import DEFAULT_TIERS, GoodputTier
from gates.config.schema import LoadSection
from gates.loadgen.goodput import tier_goodput
from gates.loadgen.stats import summarize

TIERS = [GoodputTier(name="fast", ttft_ms=200.0, tokens_per_s=20.0), GoodputTier(name="slow", ttft_ms=1000.0)]


def rec(
    ttft: float, itl: float, tokens: int = 16, ok: bool = True, arm: str = "baseline", t: float = 5.0
) -> dict[str, Any]:
    return {
        "arm": arm,
        "ok": ok,
        "t_start_s": t,
        "latency_ms": ttft + itl * (tokens - 1) if math.isfinite(itl) else ttft,
        "ttft_ms": ttft,
        "itl_ms": itl,
        "output_tokens": tokens,
        "error": "" if ok else "boom",
        "pair": "",
        "labels": "",
    }


def test_a_request_meets_a_tier_only_within_both_bounds() -> None:
    rows = [
        rec(150, 40),  # 25 tok/s, TTFT 150: both tiers
        rec(150, 60),  # 16.7 tok/s: too slow a decode for "fast", "slow" has no decode bound
        rec(250, 10),  # TTFT over 200: "slow" only
        rec(1500, 10),  # neither
        rec(100, math.nan, tokens=1),  # one token: no decode, judged on TTFT alone
        rec(100, 10, ok=False),  # failed: misses every tier, counts in the share
    ]
    fast, slow = tier_goodput(rows, 10.0, TIERS)
    assert (fast.requests, slow.requests) == (2, 4)
    assert fast.share == pytest.approx(2 / 6) and slow.share == pytest.approx(4 / 6)
    assert fast.goodput_rps == pytest.approx(0.2) and slow.goodput_rps == pytest.approx(0.4)
    assert (fast.ttft_ms, fast.tokens_per_s) == (200.0, 20.0)


def test_without_ttft_the_tier_is_not_measured_rather_than_missed() -> None:
    rows = [rec(math.nan, math.nan), rec(math.nan, math.nan)]  # a non-streaming load: no TTFT, no ITL
    (fast,) = tier_goodput(rows, 10.0, TIERS[:1])
    assert fast.requests is None and fast.goodput_rps is None and fast.share is None
    decode_only = GoodputTier(name="d", tokens_per_s=5.0)
    (d,) = tier_goodput([rec(100, 100), rec(math.nan, math.nan)], 10.0, [decode_only])
    assert d.requests == 1  # measured on one request; the other lacks its ITL and misses


def test_summarize_reports_each_tier_per_arm_over_the_measured_window() -> None:
    rows = [rec(150, 40, t=0.5), rec(150, 40), rec(150, 40, arm="candidate"), rec(900, 40, arm="candidate")]
    b = summarize(rows, "baseline", 1.0, 11.0, None, TIERS)
    c = summarize(rows, "candidate", 1.0, 11.0, None, TIERS)
    assert [t.requests for t in b.goodput_tiers] == [1, 1]  # the warm-up request is outside the window
    assert [t.requests for t in c.goodput_tiers] == [1, 2]
    assert b.to_json()["goodput_tiers"][0] == {
        "name": "fast", "ttft_ms": 200.0, "tokens_per_s": 20.0, "requests": 1, "share": 1.0, "goodput_rps": 0.1,
    }  # fmt: skip


def test_default_tiers_and_their_rules() -> None:
    assert LoadSection().goodput_tiers == list(DEFAULT_TIERS)
    assert DEFAULT_TIERS[0] == GoodputTier(name="interactive", ttft_ms=200.0, tokens_per_s=20.0)
    with pytest.raises(ValidationError, match="names must differ"):
        LoadSection(goodput_tiers=[TIERS[0], TIERS[0]])
    with pytest.raises(ValidationError, match="neither ttft_ms nor tokens_per_s"):
        LoadSection(goodput_tiers=[GoodputTier(name="x")])
    with pytest.raises(ValidationError):
        GoodputTier(name="x", ttft_ms=-1.0)


def test_the_arm_json_with_tiers_is_what_report_json_allows() -> None:
    from gates.report.model_load import ArmLoad as ArmLoadModel

    rows = [rec(150, 40), rec(math.nan, math.nan, ok=False)]
    d = summarize(rows, "baseline", 1.0, 11.0, None, [*TIERS, GoodputTier(name="decode", tokens_per_s=1.0)]).to_json()
    d.update(batch_size_mean=None, batch_size_max=None, queue_ms_mean=None, ms_per_output_token=None)
    model = ArmLoadModel.model_validate(d)
    assert [t.name for t in model.goodput_tiers] == ["fast", "slow", "decode"]
    assert model.goodput_tiers[2].ttft_ms is None and model.goodput_tiers[2].share == 0.5
