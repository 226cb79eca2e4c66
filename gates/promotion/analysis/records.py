"""What one analysis window holds: per arm, the requests it served and their timings."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from gates.errors import InfraError


@dataclasses.dataclass(frozen=True)
class Request:
    """One request as the proxy saw it."""

    at: float  # accept time (epoch seconds)
    arm: str  # stable | canary
    status: int  # HTTP status (-1: no response)
    ttft_ms: float | None  # to the response headers (Triton streams them with the first token)
    latency_ms: float | None  # to the last byte
    synthetic: bool = False

    @property
    def error(self) -> bool:
        return self.status < 200 or self.status >= 500 or self.latency_ms is None


@dataclasses.dataclass(frozen=True)
class ArmSamples:
    requests: int = 0
    errors: int = 0
    synthetic: int = 0
    latency_ms: tuple[float, ...] = ()  # of the successful requests
    ttft_ms: tuple[float, ...] = ()
    server_failures: float | None = None  # counted by the server itself (Prometheus), when known
    # from the served model's own per-request records (model_log.py), when the target keeps them
    itl_ms: tuple[float, ...] = ()  # mean inter-token time of each streamed request
    output_tokens: tuple[int, ...] = ()

    def merge(self, other: ArmSamples) -> ArmSamples:
        failures = None
        if self.server_failures is not None or other.server_failures is not None:
            failures = (self.server_failures or 0.0) + (other.server_failures or 0.0)
        return ArmSamples(
            self.requests + other.requests,
            self.errors + other.errors,
            self.synthetic + other.synthetic,
            self.latency_ms + other.latency_ms,
            self.ttft_ms + other.ttft_ms,
            failures,
            self.itl_ms + other.itl_ms,
            self.output_tokens + other.output_tokens,
        )

    def figures(self) -> dict[str, Any]:
        out: dict[str, Any] = {"requests": self.requests, "errors": self.errors, "synthetic": self.synthetic}
        for name, values in (("latency_ms", self.latency_ms), ("ttft_ms", self.ttft_ms), ("itl_ms", self.itl_ms)):
            if values:
                p50, p95, p99 = np.percentile(np.asarray(values), [50, 95, 99])
                out[name] = {"p50": round(float(p50), 2), "p95": round(float(p95), 2), "p99": round(float(p99), 2)}
        if self.server_failures is not None:
            out["server_failures"] = self.server_failures
        if self.output_tokens:
            out["output_tokens_mean"] = round(float(np.mean(self.output_tokens)), 2)
        return out


def samples(requests: Iterable[Request]) -> ArmSamples:
    reqs = list(requests)
    ok = [r for r in reqs if not r.error]
    return ArmSamples(
        requests=len(reqs),
        errors=sum(r.error for r in reqs),
        synthetic=sum(r.synthetic for r in reqs),
        latency_ms=tuple(float(r.latency_ms) for r in ok if r.latency_ms is not None),
        ttft_ms=tuple(float(r.ttft_ms) for r in ok if r.ttft_ms is not None and r.ttft_ms >= 0),
    )


@dataclasses.dataclass(frozen=True)
class WindowData:
    """Both arms over the same interval (so a slow machine slows both: infrastructure, not the canary)."""

    start: float
    end: float
    stable: ArmSamples
    canary: ArmSamples
    source: str  # the provider that read it
    measures_itl: bool = False  # the served models' own per-request records were read (itl_ms is judged)

    @classmethod
    def of(cls, start: float, end: float, requests: Iterable[Request], source: str) -> WindowData:
        by_arm: Mapping[str, list[Request]] = {"stable": [], "canary": []}
        for r in requests:
            if start <= r.at < end and r.arm in by_arm:
                by_arm[r.arm].append(r)
        return cls(start, end, samples(by_arm["stable"]), samples(by_arm["canary"]), source)


T = TypeVar("T")


def parsed_lines(path: Path, parse: Callable[[str], T | None], what: str) -> Iterator[T]:
    """The lines of a proxy's log that ``parse`` reads (it returns None for anything else)."""
    try:
        with path.open(errors="replace") as f:
            for line in f:
                item = parse(line.strip())
                if item is not None:
                    yield item
    except OSError as exc:
        raise InfraError(f"{what} {path} is not readable: {exc}") from exc
