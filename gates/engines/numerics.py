"""The numerics check every engine's fp32 build passes before it is served: its teacher-forced
next-token predictions against the Hugging Face model it was built from (top-1 agreement and KL on
fixed ordinary texts), so the gate never compares two broken engines."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from gates.errors import BadInputError
from gates.models.loader import load_model

# Texts the fp32 build is checked on: ordinary English, no golden or calibration data needed.
CHECK_TEXTS = (
    "The capital of France is Paris, and the capital of Japan is Tokyo.",
    "Water is made of hydrogen and oxygen; it boils at one hundred degrees Celsius.",
    "She opened the window, looked at the rain and decided to stay at home.",
    "To add two numbers, write them one under the other and add the digits from the right.",
)
CHECK_TOP1_MIN = 0.99
CHECK_KL_MAX = 0.01


def against_hf(hf_dir: Path, make_runner: Callable[[int, Any], Any], what: str) -> dict[str, float]:
    """``make_runner(threads, tokenizer)`` runs the build; ``what`` names it in the refusal."""
    import torch

    model, tokenizer = load_model(hf_dir)
    runner = make_runner(max(1, (os.cpu_count() or 2)), tokenizer)
    agree = positions = 0
    kls = []
    for text in CHECK_TEXTS:
        ids = [int(i) for i in tokenizer(text)["input_ids"]]
        with torch.no_grad():
            ref = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0, :-1].float(), -1).numpy()
        got = runner.score(ids[:1], ids[1:])
        if got.shape != ref.shape:
            raise BadInputError(
                f"the {what} build of {hf_dir} does not reproduce the Hugging Face model: its vocabulary "
                f"has {got.shape[-1]} entries, the model's {ref.shape[-1]}; refusing to serve it"
            )
        agree += int((ref.argmax(-1) == got.argmax(-1)).sum())
        positions += len(ids) - 1
        kls.append(float((np.exp(ref) * (ref - got)).sum(-1).mean()))
    return {"top1": agree / max(positions, 1), "kl": max(0.0, float(np.mean(kls))), "positions": positions}
