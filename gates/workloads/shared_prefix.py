"""``kind: shared_prefix``: groups of requests sharing a long system prompt, as SGLang's
generated-shared-prefix benchmark (``groups`` system prompts of ``prefix_tokens``, each request one of
them followed by its own question of ``suffix_tokens``). A server that caches prefixes answers the
second request of a group sooner; each request's group is its class label.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from gates.workloads.base import Build, Conversation, Turn, labelled

if TYPE_CHECKING:
    from gates.config.workload import WorkloadSection


class SharedPrefixWorkload:
    own_times = False

    def check(self, section: WorkloadSection) -> None:
        return None  # every key has a bound of its own

    def validate(self, section: WorkloadSection, resolve: Callable[[str], Path]) -> None:
        return None  # no file

    def build(self, b: Build) -> list[Conversation]:
        s = b.section
        rng = random.Random(b.seed)
        prefixes = [b.text.make(s.prefix_tokens, rng) for _ in range(s.groups)]
        out = []
        for _ in range(b.count):
            g = rng.randrange(s.groups)
            # the system prompt, then the request's own question: same prefix, different suffix
            prompt = b.text.chat(
                [
                    {"role": "system", "content": prefixes[g]},
                    {"role": "user", "content": b.text.make(s.suffix_tokens, rng)},
                ]
            )
            turn = Turn(prompt, b.output(rng), labels={"group": str(g), "turn": "1"})
            out.append(Conversation((labelled(turn, b.text, s.buckets),)))
        return out
