"""``kind: lengths``: input and output token lengths drawn from a distribution (fixed, uniform,
normal, or a trace's empirical one), so the tail is exercised where long prompts live."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from gates.workloads.base import Build, Conversation, Turn, labelled
from gates.workloads.trace import read_trace

if TYPE_CHECKING:
    from gates.config.workload import LengthDist, WorkloadSection
    from gates.workloads.base import Text


class Sampler:
    """Draws lengths from one LengthDist (the empirical one from its trace's lines)."""

    def __init__(self, d: LengthDist, which: str, resolve: Callable[[str], Path], text: Text | None = None):
        self.d = d
        self.pool: list[int] = []
        if d.dist == "empirical":
            assert d.trace is not None
            lines = read_trace(resolve(d.trace))
            if which == "output":
                self.pool = [ln.output_tokens for ln in lines]
            else:
                self.pool = [
                    ln.input_tokens if ln.input_tokens is not None else (text.tokens(ln.prompt or "") if text else 1)
                    for ln in lines
                ]

    def draw(self, rng: random.Random) -> int:
        d = self.d
        if d.dist == "fixed":
            v = float(d.value or 1)
        elif d.dist == "uniform":
            v = float(rng.randint(d.low or 1, d.high or 1))
        elif d.dist == "normal":
            v = rng.gauss(d.mean or 1.0, d.std or 0.0)
        else:
            v = float(rng.choice(self.pool))
        return int(min(max(round(v), d.min), d.max))


class LengthsWorkload:
    own_times = False

    def check(self, section: WorkloadSection) -> None:
        if section.input is None and section.output is None:
            raise ValueError("load.workload kind 'lengths' needs input and/or output (a length distribution)")

    def validate(self, section: WorkloadSection, resolve: Callable[[str], Path]) -> None:
        for d in (section.input, section.output):
            if d is not None and d.trace is not None:
                read_trace(resolve(d.trace))

    def build(self, b: Build) -> list[Conversation]:
        s = b.section
        rng = random.Random(b.seed)
        inp = Sampler(s.input, "input", b.resolve, b.text) if s.input else None
        outp = Sampler(s.output, "output", b.resolve) if s.output else None
        out = []
        for _ in range(b.count):
            n_in = inp.draw(rng) if inp else 32
            n_out = outp.draw(rng) if outp else b.output(rng)
            turn = Turn(b.text.make(n_in, rng), n_out, labels={"turn": "1"})
            out.append(Conversation((labelled(turn, b.text, s.buckets),)))
        return out
