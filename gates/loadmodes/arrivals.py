"""Open-loop arrival times: Poisson (exponential gaps) or evenly spaced, at a rate per second."""

from __future__ import annotations

import random
from collections.abc import Iterator


def arrival_times(rate: float, kind: str, seed: int = 0) -> Iterator[float]:
    """Seconds from the start at which requests arrive, without end.

    ``poisson``: independent exponential gaps of mean ``1/rate`` (a memoryless stream, how many
    independent clients look together); ``constant``: one every ``1/rate`` seconds, the first at 0.
    Times are computed from the start, not from when the previous request was issued, so a late
    scheduler does not lower the rate it offers: it catches up.
    """
    if rate <= 0:
        raise ValueError("rate must be positive")
    rng = random.Random(seed)
    if kind == "constant":
        i = 0
        while True:
            yield i / rate
            i += 1
    elif kind == "poisson":
        t = 0.0
        while True:
            t += rng.expovariate(rate)
            yield t
    else:
        raise ValueError(f"unknown arrivals {kind!r}")
