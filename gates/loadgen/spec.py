"""What the locust worker is asked to do, and the per-request record it writes back."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any


@dataclasses.dataclass(frozen=True)
class LoadSpec:
    url: str  # host:port of Triton's HTTP endpoint
    arms: dict[str, str]  # arm name (baseline/candidate) -> Triton model name
    prompts: tuple[str, ...]
    prompt_weights: tuple[float, ...]  # sampling weight of each prompt (the request mix)
    users: int
    spawn_rate: float
    duration_s: float
    max_new_tokens: int
    max_new_tokens_max: int  # output lengths are drawn uniformly in [max_new_tokens, max_new_tokens_max]
    timeout_s: float
    seed: int = 0
    # Past duration_s the load goes on until each arm has min_requests successful requests
    # started after warmup_s, or max_duration_s passes (a slow model still gets judged).
    warmup_s: float = 0.0
    min_requests: int = 0
    max_duration_s: float | None = None
    # adaptive stopping (gates/judge/adaptive.py): {"plan": Plan fields, "first_look_s", "look_interval_s"};
    # None: the fixed rule above
    adaptive: dict[str, Any] | None = None
    # closed: `users` loop as fast as responses come back; open: arrivals at `rate` per second
    # per arm (gates/loadgen/open_loop.py), at most max_in_flight requests outstanding
    mode: str = "closed"
    rate: float | None = None
    arrivals: str = "poisson"
    max_in_flight: int = 512

    @property
    def deadline_s(self) -> float:
        return max(self.duration_s, self.max_duration_s or 0.0)

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(dataclasses.asdict(self), indent=2))

    @classmethod
    def read(cls, path: Path) -> LoadSpec:
        data = json.loads(path.read_text())
        data["prompts"] = tuple(data["prompts"])
        data["prompt_weights"] = tuple(data["prompt_weights"])
        return cls(**data)


RECORD_FIELDS = (
    "arm",
    "user",
    "t_start_s",
    "latency_ms",
    "ttft_ms",
    "itl_ms",
    "ok",
    "output_tokens",
    "max_new_tokens",
    "prompt_chars",
    "error",
)
