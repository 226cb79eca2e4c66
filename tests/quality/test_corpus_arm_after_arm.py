"""Corpus scoring reads arms side by side by default, and one after the other on request (each
arm then served on all the cores: benchmarks/drift_corpus.py --arm-after-arm)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pytest

from gates.quality import corpus_scoring
from gates.quality.corpus import Window
from gates.triton.client import Generation


class RecordingClient:
    calls: ClassVar[list[str]] = []

    def __init__(self, url: str, timeout_s: float = 0) -> None:
        pass

    def generate(self, model: str, prompt: str, max_new: int, **kw: Any) -> Generation:
        RecordingClient.calls.append(model)
        n, k = kw["forced_ids"].size, kw["top_k"]
        cols = kw["logprob_ids"].shape[1]
        top = np.tile(np.arange(k), (n, 1))
        return Generation("", (), top, np.full((n, k), -3.0), np.full((n, cols), -2.0), 1)

    def close(self) -> None:
        pass


@pytest.mark.parametrize("arm_after_arm", [False, True])
def test_the_baseline_reads_every_window_first_only_arm_after_arm(
    monkeypatch: pytest.MonkeyPatch, arm_after_arm: bool
) -> None:
    monkeypatch.setattr(corpus_scoring, "TextModelClient", RecordingClient)
    RecordingClient.calls = []
    windows = [Window(i, "c.txt", 1, 0, tuple(range(40))) for i in range(12)]
    scores = corpus_scoring.score_windows(
        "url", {"baseline": "b", "candidate": "c"}, windows, 3, lambda: None, arm_after_arm=arm_after_arm
    )
    assert len(scores.windows) == 12 and sorted(RecordingClient.calls) == ["b"] * 12 + ["c"] * 12
    first_candidate = RecordingClient.calls.index("c")
    if arm_after_arm:
        assert RecordingClient.calls == ["b"] * 12 + ["c"] * 12
    else:  # the handoff queue holds 4: the candidate starts before the baseline has read them all
        assert first_candidate < 12
