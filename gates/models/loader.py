"""The one path by which a model is loaded: baseline, candidate, tests and Triton alike.

A candidate optimized by Model Optimizer is shipped as the base architecture (``config.json``)
plus ``modelopt_state.pth`` (``mto.save``: quantizer state *and* weights). Loading it with plain
``from_pretrained`` would silently drop the quantization, so this loader restores it with
``mto.restore`` whenever that file is present: what is gated is what is shipped.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from gates.errors import InfraError

MODELOPT_STATE = "modelopt_state.pth"
ENGINE_JSON = "engine.json"


def load_model(path: Path, threads: int | None = None, fold_weights: bool = False) -> tuple[Any, Any]:
    """Load ``(model, tokenizer)`` from a checkpoint directory, in eval mode, on CPU in float32.

    ``path`` may also be a ``torch-int8`` engine directory: the model it was built from is loaded
    and its quantized Linear layers are replaced by the engine's INT8 layers (on CPU; the engines
    place a model where they run it: ``gates.engines.torch_load``).

    ``fold_weights`` (serving): Model Optimizer's simulation fake-quantizes every weight on every
    forward pass, which made a weight-only SmolLM2 candidate ~7x slower than its baseline. The
    fake-quantized weight never changes, so it is folded once into the stored weight
    (``mtq.fold_weight``): bit-identical logits (tests/models/test_loader.py), none of the cost.
    The served model is still a simulation of the format and the report says so.
    """
    engine = path / ENGINE_JSON
    if engine.is_file():
        spec = json.loads(engine.read_text())
        if spec.get("backend") == "torch-int8":
            return _load_int8_engine(path, spec, threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    if threads:
        torch.set_num_threads(threads)
    tokenizer = prepare_tokenizer(AutoTokenizer.from_pretrained(path, local_files_only=True))
    state = path / MODELOPT_STATE
    if state.is_file():
        import modelopt.torch.opt as mto

        # The architecture comes from config.json; every weight and quantizer comes from the
        # modelopt state, so nothing of a random init survives (the serving test proves it).
        config = AutoConfig.from_pretrained(path, local_files_only=True)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        model = mto.restore(model, str(state))
        if fold_weights:
            import modelopt.torch.quantization as mtq

            mtq.fold_weight(model, keep_attrs=True)
    else:
        model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, dtype=torch.float32)
    model.eval()
    return model, tokenizer


def prepare_tokenizer(tokenizer: Any) -> Any:
    """Make a tokenizer as real checkpoints ship it usable for batches.

    Many published tokenizers (SmolLM2, Llama, Mistral) have no pad token: batching then raises
    "Asking to pad but the tokenizer does not have a padding token". Padded positions are masked,
    so any existing token serves; unk first (it never ends a generation), else eos.
    """
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.unk_token if tokenizer.unk_token is not None else tokenizer.eos_token
    return tokenizer


def stop_token_ids(model: Any, tokenizer: Any) -> tuple[int, ...]:
    """Every id that ends a generation: the model's own (``generation_config``) and the tokenizer's.

    They differ in real checkpoints: SmolLM2's tokenizer says eos is ``<|im_start|>`` while its
    generation config stops at ``<|im_end|>``, the token a chat answer ends with.
    """
    ids: list[int] = []
    generation = getattr(model, "generation_config", None)
    configured = getattr(generation, "eos_token_id", None) if generation is not None else None
    for value in (configured, tokenizer.eos_token_id):
        if isinstance(value, int):
            ids.append(value)
        elif isinstance(value, (list, tuple)):
            ids.extend(int(v) for v in value)
    return tuple(dict.fromkeys(ids))


def engine_source(path: Path, spec: dict[str, Any]) -> Path:
    """The model an engine directory was built from, checked against the digest it was built from."""
    source = Path(spec["model_path"])
    manifest = source / "manifest.json"
    if manifest.is_file():  # the engine must run on the model it was built from, not a rebuilt one
        digest = json.loads(manifest.read_text()).get("output_digest")
        if digest != spec.get("model_digest"):
            raise InfraError(f"{path}: built from model {spec.get('model_digest')}, but {source} now holds {digest}")
    return source


def _load_int8_engine(path: Path, spec: dict[str, Any], threads: int | None) -> tuple[Any, Any]:
    from gates.engines.int8_kernels import INT8_WEIGHTS, install_int8_layers, load_int8_layers

    model, tokenizer = load_model(engine_source(path, spec), threads)
    install_int8_layers(model, load_int8_layers(path / INT8_WEIGHTS))
    model.eval()
    return model, tokenizer
