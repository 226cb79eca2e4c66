"""Optimize: resolve the base model, then run the recipes (prune -> distill -> quantize), each an artifact.

Every step's artifact is named by the digest of its inputs (its config section, the parent
artifact's digest, dataset digests, tool versions), so an unchanged recipe is a cache hit and a
changed step rebuilds only itself and what follows.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path
from typing import Any

from gates.artifacts import Artifact, ArtifactStore, ModelRef, tool_versions, tree_digest
from gates.context import RunContext
from gates.errors import BadInputError
from gates.models.placement import cuda_available
from gates.models.prompts import render_golden
from gates.models.sources import ResolvedSource, resolve_source
from gates.optimize.base import RecipeInput
from gates.optimize.recipes import RECIPES
from gates.quality.golden import GoldenPrompt
from gates.record import OptimizeResult, PreflightResult

RENDERED = "prompts.json"


def resolve_base(ctx: RunContext) -> ResolvedSource:
    try:
        return resolve_source(ctx.config.model.source, ctx.pipeline.resolve, ctx.store, ctx.progress)
    except BadInputError as exc:
        raise BadInputError(f"{ctx.pipeline.where('model', 'source')}: {exc}") from None


def render_prompts(
    store: ArtifactStore, base: Path, base_digest: str, golden: tuple[GoldenPrompt, ...]
) -> tuple[str, ...]:
    """The golden rows as the served models receive them: chats rendered with the base model's chat
    template. The rendering is an artifact keyed by the model's digest, the chats and the tool
    versions, so a cached run does not import transformers (seconds) to render the same text again."""
    chats = tuple(g for g in golden if g.row.prompt is None)
    if not chats:
        return render_golden(None, golden)

    def build(out: Path) -> dict[str, Any]:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(base, local_files_only=True)
        (out / RENDERED).write_text(json.dumps(render_golden(tokenizer, chats)))  # no template: exit 2 now
        return {}

    messages = [[m.model_dump() for m in g.row.messages or ()] for g in chats]
    art = store.get_or_build("rendered-prompts", {"model": base_digest, "chats": messages, **tool_versions()}, build)
    rendered = iter(json.loads((art.path / RENDERED).read_text()))
    return tuple(g.row.prompt if g.row.prompt is not None else next(rendered) for g in golden)


class OptimizeStage:
    name = "optimize"

    def run(self, ctx: RunContext) -> None:
        pre = ctx.need(PreflightResult)
        source = resolve_base(ctx)
        base_path = source.path
        base = ModelRef("baseline", base_path, tree_digest(base_path), "none", "real")
        prompts = render_prompts(ctx.store, base_path, base.digest, pre.golden)  # a chat without a template: exit 2
        opt = ctx.config.optimize
        current = dataclasses.replace(base, role="candidate")
        steps: list[dict[str, Any]] = []
        started = ctx.clock()
        tools = tool_versions()

        def record(kind: str, art: Artifact, label: str, quant_path: str) -> ModelRef:
            steps.append(
                {
                    "kind": kind,
                    "digest": art.manifest["output_digest"],
                    "reused": art.reused,
                    "build_wall_s": art.manifest.get("build_wall_s"),
                    **{k: art.manifest[k] for k in ("measured",) if k in art.manifest},
                }
            )
            ctx.progress(f"{kind}: {'cache hit' if art.reused else 'built'} {art.manifest['output_digest'][:12]}")
            return ModelRef("candidate", art.path, art.manifest["output_digest"], label, quant_path)

        # calibration runs where the engine runs (a GPU runner's GPU)
        device = ctx.config.engine.placement(cuda_available())[0]
        for recipe in RECIPES.values():
            section = recipe.section(opt)
            if section is None:
                continue
            inp = RecipeInput(base, current, ctx.pipeline, pre.calibration, pre.quant_path, ctx.progress, device)
            key = {**recipe.cache_key(section, inp), "tools": tools}
            art = ctx.store.get_or_build(recipe.artifact_kind, key, functools.partial(recipe.build, section, inp))
            current = record(recipe.kind, art, recipe.label(section, current.format), recipe.quant_path(section, inp))

        wall = ctx.clock() - started
        if not steps:
            note = "no optimization configured: candidate = baseline"
            ctx.put(OptimizeResult(base, current, True, 0.0, (), note, prompts, source.note))
            return
        reused = all(s["reused"] for s in steps)
        chain = " -> ".join(s["kind"] for s in steps)
        note = f"{chain}: candidate {current.digest[:12]} ({'all cache hits' if reused else 'built'})"
        ctx.put(OptimizeResult(base, current, reused, wall, tuple(steps), note, prompts, source.note))
