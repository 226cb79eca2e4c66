"""Knowledge distillation with Model Optimizer (``modelopt.torch.distill``): teacher = base model.

Logits KD on a JSONL corpus: the student minimizes a balance of its own LM loss and the KL to the
teacher's temperature-softened distribution (``alpha`` weighs the KD term). Seen here: passing
the loss object directly as ``criterion`` fails; the mapping ``{("lm_head", "lm_head"): loss}``
works, and ``mtd.export`` returns the plain student.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from gates.errors import CapabilityError, InfraError
from gates.progress import bar


def distill(
    student: Any,
    teacher: Any,
    batches: Sequence[Any],
    *,
    steps: int,
    lr: float,
    temperature: float,
    alpha: float,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> tuple[Any, list[float]]:
    """Train ``student`` against ``teacher`` for ``steps`` over ``batches`` (cycled); return it and its losses."""
    import torch

    try:
        import modelopt.torch.distill as mtd
    except ImportError as exc:
        raise CapabilityError(f"NVIDIA Model Optimizer is not installed ({exc})") from exc
    torch.manual_seed(seed)
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    try:
        model = mtd.convert(
            student,
            mode=[
                (
                    "kd_loss",
                    {
                        "teacher_model": teacher,
                        "criterion": {("lm_head", "lm_head"): mtd.LogitsDistillationLoss(temperature=temperature)},
                        "loss_balancer": mtd.StaticLossBalancer(kd_loss_weight=alpha),
                    },
                )
            ],
        )
    except Exception as exc:
        raise InfraError(f"Model Optimizer could not set up distillation: {exc!r}") from exc
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    losses = []
    for step in bar(range(steps), steps, "distillation"):
        batch = batches[step % len(batches)]
        out = model(input_ids=batch["input_ids"], attention_mask=batch.get("attention_mask"), labels=batch["input_ids"])
        loss = model.compute_kd_loss(student_loss=out.loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        if progress and (step + 1) % max(1, steps // 5) == 0:
            progress(f"distillation step {step + 1}/{steps}: loss {losses[-1]:.4f}")
    student = mtd.export(model)
    student.eval()
    return student, losses
