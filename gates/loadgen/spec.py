"""What the locust worker is asked to do, and the per-request record it writes back."""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gates.config.requests import requests_target
from gates.judge.adaptive import plan_for
from gates.loadmodes import LoadMode

if TYPE_CHECKING:
    from gates.config.schema import Pipeline


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
    # a gates.loadmodes.LOAD_MODES name: closed: `users` loop as fast as responses come back;
    # open: arrivals at `rate` per second per arm, at most max_in_flight requests outstanding
    mode: str = LoadMode.closed
    rate: float | None = None
    arrivals: str = "poisson"
    max_in_flight: int = 512
    # a workload's conversations (JSONL written by the load stage, gates/workloads/); None: the prompt mix
    workload: str | None = None
    # locust worker processes under one master (gates/loadgen/distributed.py); 1: one local runner
    processes: int = 1
    # open loop: the share of the arrivals each arm gets (the capacity search's per-arm rates: the
    # arrivals come at ``rate``, the highest arm's, and each arm takes a common random subset of
    # them, gates/loadgen/open_loop.py); None: every arm gets every arrival
    arm_share: dict[str, float] | None = None

    @classmethod
    def from_config(
        cls,
        config: Pipeline,
        url: str,
        arms: Mapping[str, str],
        prompts: Sequence[str],
        weights: Sequence[float],
    ) -> LoadSpec:
        """The main window's spec: ``load:`` of the pipeline, the deployed ``arms`` (arm -> Triton
        model name) at ``url``, and the request mix (``prompts``, each with its sampling weight)."""
        load = config.load
        adaptive = None
        if load.adaptive:
            adaptive = {
                "plan": dataclasses.asdict(plan_for(config.gates, load.pass_error)),
                "first_look_s": load.first_look_s,
                "look_interval_s": load.look_interval_s,
            }
        return cls(
            url=url,
            arms=dict(arms),
            prompts=tuple(prompts),
            prompt_weights=tuple(weights),
            users=load.users,
            spawn_rate=load.spawn_rate or float(load.users),
            duration_s=load.duration_s,
            max_new_tokens=load.max_new_tokens,
            max_new_tokens_max=load.max_new_tokens_max or load.max_new_tokens,
            timeout_s=load.timeout_s,
            warmup_s=load.warmup_s,
            # enough for every declared gate (a p95 tail needs 40 even when min_requests is 30)
            min_requests=requests_target(config.gates) if load.max_duration_s else 0,
            max_duration_s=load.max_duration_s,
            adaptive=adaptive,
            mode=str(load.mode),
            rate=load.rate,
            arrivals=load.arrivals,
            processes=load.generator_processes,
        )

    def draw(self, rng: random.Random) -> tuple[str, int, list[tuple[str, str]]]:
        """One pair's request: a prompt from the mix, an output length, the arms in a random order."""
        prompt = rng.choices(self.prompts, weights=self.prompt_weights)[0]
        max_new = rng.randint(self.max_new_tokens, self.max_new_tokens_max)
        arms = list(self.arms.items())
        rng.shuffle(arms)
        return prompt, max_new, arms

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
    "pair",  # the two requests (one per arm) of one draw share it: paired comparisons of their outputs
    "labels",  # a workload's class labels, key=value;key=value (gates/workloads/classes.py)
)
