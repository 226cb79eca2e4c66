"""Progress bars for long optimization loops (calibration, pruning, distillation).

A bar on a terminal (tqdm, on stderr); in CI logs, where a bar redraw is noise, tqdm turns
itself off (``disable=None`` means "off when stderr is not a TTY") and the stage's progress
lines (a few per loop) tell the same story. ``GATES_PROGRESS=0`` turns bars off everywhere.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def bar(items: Iterable[T], total: int, desc: str) -> Iterator[T]:
    from tqdm import tqdm  # type: ignore[import-untyped]

    disable = True if os.environ.get("GATES_PROGRESS") == "0" else None
    yield from tqdm(items, total=total, desc=desc, unit="step", file=sys.stderr, disable=disable, leave=False)
