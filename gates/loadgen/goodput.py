"""Goodput per arm at each of ``load.goodput_tiers`` (gates/config/goodput.py): requests per second
of the measured window that met the tier's TTFT bound and per-user decode speed."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

from gates.config.goodput import GoodputTier


@dataclasses.dataclass(frozen=True)
class TierGoodput:
    name: str
    ttft_ms: float | None  # the tier's bounds, repeated so that a report reads on its own
    tokens_per_s: float | None
    requests: int | None  # requests of the window that met the tier (None: the figures were not measured)
    share: float | None  # of every request of the window, failed ones included (they miss every tier)
    goodput_rps: float | None


def _meets(r: dict[str, Any], tier: GoodputTier) -> bool | None:
    """True / False; None when the record lacks a figure the tier needs (no TTFT without streaming)."""
    if tier.ttft_ms is not None:
        if not math.isfinite(r["ttft_ms"]):
            return None
        if r["ttft_ms"] > tier.ttft_ms:
            return False
    if tier.tokens_per_s is not None and int(r["output_tokens"]) > 1:  # one token: no decode to be slow in
        if not math.isfinite(r["itl_ms"]):
            return None
        if r["itl_ms"] * tier.tokens_per_s > 1000.0:
            return False
    return True


def tier_goodput(
    rows: Sequence[dict[str, Any]], window_s: float, tiers: Sequence[GoodputTier]
) -> tuple[TierGoodput, ...]:
    """Each tier over the window's records of one arm (``rows``, failed ones included). A request
    lacking a figure the tier needs misses it; when no successful request has it, the tier is not
    measured (null figures) rather than met by none."""
    ok = [r for r in rows if r["ok"]]
    out = []
    for t in tiers:
        seen = [_meets(r, t) for r in ok]
        if ok and all(s is None for s in seen):
            out.append(TierGoodput(t.name, t.ttft_ms, t.tokens_per_s, None, None, None))
            continue
        met = sum(s is True for s in seen)
        share = met / len(rows) if rows else math.nan
        out.append(TierGoodput(t.name, t.ttft_ms, t.tokens_per_s, met, share, met / max(window_s, 1e-9)))
    return tuple(out)
