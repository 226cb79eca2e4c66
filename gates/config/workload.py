"""``load.workload``: realistic paired requests (gates/workloads/), each kind's own rules in its class.

Distributions of input/output lengths (``lengths``) are :class:`LengthDist`; the rest of the keys
belong to one kind each, and a key set for another kind is an error (it would be silently ignored).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from gates.config.strict import Strict
from gates.loadmodes import LoadMode
from gates.workloads import WORKLOADS, WorkloadKind
from gates.workloads.classes import describe, parse

if TYPE_CHECKING:
    from collections.abc import Mapping


class LengthDist(Strict):
    """A token-length distribution: ``fixed`` (value), ``uniform`` (low..high), ``normal`` (mean,
    std; clipped to min..max) or ``empirical`` (the trace file's own lengths, sampled with replacement)."""

    dist: Literal["fixed", "uniform", "normal", "empirical"]
    value: int | None = Field(default=None, ge=1, le=131_072)
    low: int | None = Field(default=None, ge=1, le=131_072)
    high: int | None = Field(default=None, ge=1, le=131_072)
    mean: float | None = Field(default=None, gt=0, le=131_072)
    std: float | None = Field(default=None, ge=0, le=131_072)
    trace: str | None = None  # a trace JSONL (gates/workloads/trace.py) whose lengths are drawn
    min: int = Field(default=1, ge=1, le=131_072)
    max: int = Field(default=4096, ge=1, le=131_072)

    @model_validator(mode="after")
    def _fields(self) -> LengthDist:
        need = {"fixed": ("value",), "uniform": ("low", "high"), "normal": ("mean", "std"), "empirical": ("trace",)}
        missing = [k for k in need[self.dist] if getattr(self, k) is None]
        if missing:
            raise ValueError(f"dist {self.dist!r} needs {', '.join(missing)}")
        if self.dist == "uniform" and (self.low or 0) > (self.high or 0):
            raise ValueError("low must not exceed high")
        if self.min > self.max:
            raise ValueError("min must not exceed max")
        return self


KIND_KEYS: dict[str, tuple[str, ...]] = {
    "trace": ("file", "max_requests"),
    "shared_prefix": ("groups", "prefix_tokens", "suffix_tokens"),
    "multi_turn": ("file", "turns", "think_s", "user_tokens", "assistant_tokens"),
    "lengths": ("input", "output"),
}


class WorkloadSection(Strict):
    # Not strict: YAML gives the kind's name as a string
    kind: WorkloadKind = Field(strict=False)
    # trace: the JSONL to replay; multi_turn: conversations to replay (JSONL {"messages": [...]})
    file: str | None = None
    max_requests: int | None = Field(default=None, ge=1, le=10_000_000)  # trace: its first N lines only
    groups: int = Field(default=4, ge=1, le=10_000)  # shared_prefix: system prompts
    prefix_tokens: int = Field(default=512, ge=1, le=131_072)  # shared_prefix: each system prompt's length
    suffix_tokens: int = Field(default=32, ge=1, le=131_072)  # shared_prefix: each request's own question
    turns: int = Field(default=3, ge=1, le=100)  # multi_turn (generated): turns per conversation
    think_s: float = Field(default=1.0, ge=0, le=3600)  # multi_turn: between a reply and the next turn
    user_tokens: int = Field(default=48, ge=1, le=131_072)  # multi_turn (generated): per user message
    assistant_tokens: int = Field(default=32, ge=1, le=131_072)  # multi_turn (generated): the history's replies
    input: LengthDist | None = None  # lengths: input tokens
    output: LengthDist | None = None  # lengths: output tokens (other kinds: load.max_new_tokens..max)
    # input-length classes of the per-class figures: ≤128, 129-512, 513-2048, >2048 tokens
    buckets: list[int] = Field(default_factory=lambda: [128, 512, 2048], min_length=1, max_length=16)

    @model_validator(mode="after")
    def _kind(self) -> WorkloadSection:
        if self.buckets != sorted(set(self.buckets)) or self.buckets[0] < 1:
            raise ValueError("load.workload.buckets must be strictly increasing positive token counts")
        others = {k for kind, keys in KIND_KEYS.items() if kind != self.kind for k in keys} - set(KIND_KEYS[self.kind])
        stray = sorted(k for k in others & self.model_fields_set)
        if stray:
            raise ValueError(f"load.workload key(s) {', '.join(stray)} do not apply to kind {self.kind.value!r}")
        WORKLOADS[self.kind].check(self)
        return self


def check_workloads(
    workloads: list[WorkloadSection], mode: LoadMode, rate: float | None, sweep: bool, mix: object, profile: str
) -> bool:
    """The cross-field rules of ``load.workload`` with the rest of ``load:``; True when a workload
    carries its own arrival times (a trace), which pace an open loop in place of ``load.rate``."""
    timed = [WORKLOADS[w.kind].own_times for w in workloads]
    if mode == LoadMode.open and any(timed) and sweep:
        raise ValueError("a trace workload paces the open loop by its own times: drop load.sweep")
    if mode == LoadMode.open and rate is None and not all(timed):
        raise ValueError("load.workload: the workloads other than a trace start at load.rate: set it")
    if workloads and (mix is not None or profile != "golden"):
        raise ValueError("load.workload replaces load.profile and load.mix: set one of them")
    if len({w.kind for w in workloads}) != len(workloads):
        raise ValueError("load.workload lists a kind twice")
    return any(timed)


def check_where(v: dict[str, str] | None) -> dict[str, str] | None:
    """``gates.metrics[].where``: at least one label, every condition parses (gates/workloads/classes.py)."""
    if v is not None:
        if not v:
            raise ValueError("where needs at least one label condition")
        for condition in v.values():
            parse(condition)
    return v


def series_key(name: str, where: Mapping[str, str] | None) -> str:
    """The evidence series a metric gate reads: ``ttft_ms``, or ``ttft_ms[turn>1]`` for a class."""
    return f"{name}[{describe(where)}]" if where else name
