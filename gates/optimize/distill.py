"""Knowledge distillation with Model Optimizer (``modelopt.torch.distill``): teacher = base model.

Logits KD on a JSONL corpus: the student minimizes a balance of its own LM loss and the KL to the
teacher's temperature-softened distribution (``alpha`` weighs the KD term). Seen here: passing
the loss object directly as ``criterion`` fails; the mapping ``{("lm_head", "lm_head"): loss}``
works, and ``mtd.export`` returns the plain student.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gates.artifacts import file_sha256
from gates.config.schema import DistillSection, OptimizeSection
from gates.errors import CapabilityError, InfraError
from gates.models.loader import load_model
from gates.optimize.base import RecipeInput, save_hf
from gates.optimize.quantize import calibration_batches
from gates.progress import bar
from gates.quality.golden import load_calibration


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


class DistillRecipe:
    kind = "distill"
    artifact_kind = "model-distilled"

    def section(self, cfg: OptimizeSection) -> DistillSection | None:
        return cfg.distill

    def data_files(self, section: DistillSection) -> tuple[str, ...]:
        return section.data_files()

    def cache_key(self, section: DistillSection, inp: RecipeInput) -> dict[str, Any]:
        return {
            "distill": section.model_dump(mode="json"),
            "student": inp.parent.digest,
            "teacher": inp.base.digest,
            "data": file_sha256(inp.pipeline.resolve(section.data)),
        }

    def build(self, section: DistillSection, inp: RecipeInput, out: Path) -> dict[str, Any]:
        teacher, tok = load_model(inp.base.path)
        student, _ = load_model(inp.parent.path)
        texts = load_calibration(inp.pipeline.resolve(section.data))
        batches = calibration_batches(tok, texts, section.batch_size, section.max_length)
        d = section
        student, losses = distill(
            student,
            teacher,
            batches,
            steps=d.steps,
            lr=d.lr,
            temperature=d.temperature,
            alpha=d.alpha,
            seed=d.seed,
            progress=inp.progress,
        )
        save_hf(student, tok, out)
        return {"measured": {"first_loss": losses[0], "last_loss": losses[-1], "steps": len(losses)}}

    def label(self, section: DistillSection, parent_format: str) -> str:
        return f"{parent_format}+distilled" if parent_format != "none" else "distilled"

    def quant_path(self, section: DistillSection, inp: RecipeInput) -> str:
        return "real"
