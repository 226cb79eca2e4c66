"""What the CPU benchmarks share: the baseline's greedy continuations, teacher-forced log-probabilities.

(``gpu_ptq.py`` keeps its own copy: it runs on the GPU machine with only the carried wheels.)
"""

from __future__ import annotations

from typing import Any

import torch


def greedy_continuations(model: Any, tok: Any, prompts: list[str], new_tokens: int) -> list[tuple[Any, int]]:
    """(prompt + continuation ids, prompt length) per prompt: the sequences every model is scored on."""
    seqs = []
    with torch.no_grad():
        for p in prompts:
            ids = tok(p, return_tensors="pt")["input_ids"]
            out = model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=new_tokens,
                do_sample=False,
                pad_token_id=tok.pad_token_id,
            )
            seqs.append((out, int(ids.shape[1])))
    return seqs


def logprobs(model: Any, seqs: list[tuple[Any, int]]) -> list[torch.Tensor]:
    """Next-token log-probabilities over the continuation positions (teacher forcing)."""
    with torch.no_grad():
        return [torch.log_softmax(model(input_ids=s).logits[0, n - 1 : -1].float(), -1) for s, n in seqs]


def compare(a: list[torch.Tensor], b: list[torch.Tensor]) -> tuple[float, float]:
    """(top-1 agreement, mean KL(a || b)) over every position."""
    top1 = torch.cat([(x.argmax(-1) == y.argmax(-1)).float() for x, y in zip(a, b, strict=True)]).mean()
    kl = torch.cat([(x.exp() * (x - y)).sum(-1) for x, y in zip(a, b, strict=True)]).mean()
    return float(top1), max(0.0, float(kl))  # a KL is >= 0; float noise can print -1e-11
