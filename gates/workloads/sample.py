"""The sample trace shipped in golden_prompts/sample-trace.jsonl, and how it was made.

It is synthetic, written here, not a recording: bursty arrivals (gamma-distributed gaps of shape
0.5, i.e. more variable than Poisson, the shape BurstGPT reports for conversational traffic) and
log-normal input and output lengths (the long right tail of real prompts), scaled down so a 135M
model on two shared CPU cores keeps up with it (two minutes). ``python -m gates.workloads.sample OUT`` writes
it again; tests/workloads/test_sample.py checks the shipped file is exactly this function's output.
"""

from __future__ import annotations

import json
import math
import random
import sys
from pathlib import Path
from typing import Any


def sample_trace(
    n: int = 60, rate: float = 0.5, shape: float = 0.5, seed: int = 30, max_input: int = 256, max_output: int = 24
) -> list[dict[str, Any]]:
    """``n`` requests at ``rate`` per second on average, gaps Gamma(``shape``) (coefficient of
    variation 1/sqrt(shape): 1.4 at 0.5), inputs log-normal around 48 tokens, outputs around 12."""
    rng = random.Random(seed)
    t = 0.0
    out = []
    for i in range(n):
        if i:
            t += rng.gammavariate(shape, 1.0 / (shape * rate))
        inp = min(max_input, max(4, round(rng.lognormvariate(math.log(48), 0.9))))
        outp = min(max_output, max(2, round(rng.lognormvariate(math.log(12), 0.5))))
        out.append({"at_s": round(t, 3), "input_tokens": inp, "output_tokens": outp})
    return out


def write(path: Path) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in sample_trace()))


if __name__ == "__main__":
    write(Path(sys.argv[1]))
