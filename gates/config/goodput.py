"""``load.goodput_tiers``: service tiers a request either meets or misses, for goodput per arm.

A tier is a TTFT bound and a per-user decode speed (tokens per second one user sees once the first
token arrived: ``1000 / ITL``), as DistServe and the MLPerf server scenarios state their SLOs
(TTFT and time per output token). The defaults span what a chat user, a standard API client and a
batch consumer accept; a request with a single output token has no decode and is judged on its
TTFT alone.
"""

from __future__ import annotations

from pydantic import Field

from gates.config.strict import Strict


class GoodputTier(Strict):
    name: str = Field(min_length=1, max_length=40)
    ttft_ms: float | None = Field(default=None, gt=0)
    tokens_per_s: float | None = Field(default=None, gt=0)  # per user: 1000 / ITL


DEFAULT_TIERS: tuple[GoodputTier, ...] = (
    GoodputTier(name="interactive", ttft_ms=200.0, tokens_per_s=20.0),
    GoodputTier(name="standard", ttft_ms=1000.0, tokens_per_s=10.0),
    GoodputTier(name="batch", ttft_ms=5000.0, tokens_per_s=2.0),
)


def default_tiers() -> list[GoodputTier]:
    return list(DEFAULT_TIERS)


def check_tiers(tiers: list[GoodputTier]) -> None:
    names = [t.name for t in tiers]
    if len(set(names)) != len(names):
        raise ValueError(f"load.goodput_tiers: names must differ (got {names})")
    for t in tiers:
        if t.ttft_ms is None and t.tokens_per_s is None:
            raise ValueError(f"load.goodput_tiers: tier {t.name!r} sets neither ttft_ms nor tokens_per_s")
