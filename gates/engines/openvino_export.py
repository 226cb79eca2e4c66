"""A Hugging Face causal LM as a stateful OpenVINO IR, and its weights compressed by NNCF.

OpenVINO GenAI's ``ContinuousBatchingPipeline`` rewrites a *stateful* decoder (KV cache held in
``ReadValue``/``Assign`` variables, inputs ``input_ids``, ``attention_mask``, ``position_ids``,
``beam_idx``) into paged attention at load time; a stateless export (past KV as inputs and
outputs) is refused by it. ``optimum-intel`` (2.2.0) makes such exports, but installing it
downgrades transformers (to 5.5) and pulls a CUDA torch, so gates does the same few steps itself
with ``openvino`` alone: trace the model with its KV cache as explicit tensors
(``openvino.convert_model``), name the ports as the GenAI loader expects, add ``beam_idx`` (a
Gather on every cache input), then hide the cache in variables
(``apply_make_stateful_transformation``) initialized to zero length. Attention must be SDPA (the
``ScaledDotProductAttention`` op is what the paged-attention rewrite looks for).
"""

from __future__ import annotations

import re
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from gates.errors import BadInputError

MODEL_XML = "openvino_model.xml"
COPIED = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json")
COPIED_TOO = ("special_tokens_map.json", "chat_template.jinja")


def kv_input(layer: int, kind: str) -> str:
    return f"past_key_values.{layer}.{kind}"


def kv_output(layer: int, kind: str) -> str:
    return f"present.{layer}.{kind}"


def export_stateful(hf_dir: Path) -> tuple[Any, dict[str, int]]:
    """The checkpoint as a stateful ``ov.Model`` in fp32, and its geometry (layers, heads, dims)."""
    import openvino as ov
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(
        hf_dir, dtype=torch.float32, attn_implementation="sdpa", local_files_only=True
    ).eval()
    cfg = model.config
    layers = int(cfg.num_hidden_layers)
    kv_heads = int(getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads)
    head_dim = int(getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads)
    geometry = {"layers": layers, "kv_heads": kv_heads, "head_dim": head_dim, "vocab": int(cfg.vocab_size)}
    wrapped = _ExplicitCache(model, layers)
    batch, past, new = 2, 3, 4  # past > 0 and new > 1: the trace keeps both dynamic
    example = (
        torch.ones(batch, new, dtype=torch.long),
        torch.ones(batch, past + new, dtype=torch.long),
        torch.arange(past, past + new).repeat(batch, 1),
        *[torch.zeros(batch, kv_heads, past, head_dim) for _ in range(2 * layers)],
    )
    try:
        # the trace's warnings are about shape checks it freezes; the numerics check at build
        # (gates/engines/openvino.py) is what shows the frozen graph reproduces the model
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            ov_model = ov.convert_model(wrapped, example_input=example)
    except Exception as exc:  # an architecture whose cache or attention the trace cannot follow
        raise BadInputError(
            f"OpenVINO cannot convert {hf_dir} ({cfg.model_type}): {type(exc).__name__}: {str(exc)[:400]}"
        ) from exc
    inputs = ["input_ids", "attention_mask", "position_ids"]
    kv_in = [kv_input(i, kind) for i in range(layers) for kind in ("key", "value")]
    kv_out = [kv_output(i, kind) for i in range(layers) for kind in ("key", "value")]
    for port, name in zip(ov_model.inputs, inputs + kv_in, strict=True):
        port.get_tensor().set_names({name})
    for port, name in zip(ov_model.outputs, ["logits", *kv_out], strict=True):
        port.get_tensor().set_names({name})
    for name in kv_in:  # static heads and head size: the state initializer reads them
        ov_model.input(name).get_node().set_partial_shape(ov.PartialShape([-1, kv_heads, -1, head_dim]))
    ov_model.validate_nodes_and_infer_types()
    if not any(op.get_type_name() == "ScaledDotProductAttention" for op in ov_model.get_ops()):
        raise BadInputError(
            f"OpenVINO converted {hf_dir} without a ScaledDotProductAttention op: "
            "ContinuousBatchingPipeline needs one to page the KV cache"
        )
    _make_stateful(ov_model, kv_in, kv_out)
    return ov_model, geometry


class _ExplicitCache:
    """Factory of a ``torch.nn.Module`` taking the KV cache as tensors (the trace needs tensors in and out)."""

    def __new__(cls, model: Any, layers: int) -> Any:  # a real Module, built lazily (torch is heavy)
        import torch
        from transformers.cache_utils import DynamicCache

        class Wrapped(torch.nn.Module):  # type: ignore[misc]  # torch is Any here (pyproject: follow_imports skip)
            def __init__(self) -> None:
                super().__init__()
                self.model = model

            def forward(self, input_ids: Any, attention_mask: Any, position_ids: Any, *past: Any) -> Any:
                cache = DynamicCache(config=self.model.config)
                for i in range(layers):
                    # set, not update(): update() concatenates onto an empty rank-1 tensor first,
                    # which the trace records as a Concat OpenVINO cannot type
                    layer = cache.layers[i]
                    layer.dtype, layer.device = past[2 * i].dtype, past[2 * i].device
                    layer.keys, layer.values = past[2 * i], past[2 * i + 1]
                    layer.is_initialized = True
                out = self.model(
                    input_ids=input_ids,
                    attention_mask=attention_mask,
                    position_ids=position_ids,
                    past_key_values=cache,
                    use_cache=True,
                )
                present = []
                for layer in out.past_key_values.layers[:layers]:
                    present += [layer.keys, layer.values]
                return (out.logits, *present)

        return Wrapped()


def _make_stateful(ov_model: Any, kv_in: list[str], kv_out: list[str]) -> None:
    """``beam_idx`` plus the cache in variables, as OpenVINO GenAI's loader expects of an LLM IR."""
    import openvino as ov
    from openvino import opset13
    from openvino._offline_transformations import apply_make_stateful_transformation

    batch_dim = ov_model.input("input_ids").get_partial_shape()[0]
    beam_idx = opset13.parameter(name="beam_idx", dtype=ov.Type.i32, shape=ov.PartialShape([batch_dim]))
    beam_idx.output(0).get_tensor().add_names({"beam_idx"})
    ov_model.add_parameters([beam_idx])
    for name in kv_in:
        port = ov_model.input(name)
        consumers = port.get_target_inputs()
        gather = opset13.gather(port, beam_idx, opset13.constant(0))
        for consumer in consumers:
            consumer.replace_source_output(gather.output(0))
    ov_model.validate_nodes_and_infer_types()
    apply_make_stateful_transformation(ov_model, dict(zip(kv_in, kv_out, strict=True)))
    ids = ov_model.input("input_ids")
    batch = opset13.gather(opset13.shape_of(ids, output_type="i64"), opset13.constant([0]), opset13.constant(0))
    for op in ov_model.get_ops():
        if op.get_type_name() != "ReadValue":
            continue
        dims: list[Any] = [d.min_length for d in op.get_output_partial_shape(0)]  # seq: 0 (empty cache)
        dims[0] = batch
        parts = [opset13.constant(np.array([d], dtype=np.int64)) if isinstance(d, int) else d for d in dims]
        zero = opset13.constant(0.0, dtype=op.get_output_element_type(0))
        op.set_arguments([opset13.broadcast(zero, opset13.concat(parts, axis=0))])
    ov_model.validate_nodes_and_infer_types()


def compress(ov_model: Any, precision: str, group_size: int) -> dict[str, Any]:
    """NNCF's data-free weight compression in place: int8 per output channel (asymmetric), or int4
    symmetric in groups of ``group_size`` on every MatMul (ratio 1.0; NNCF keeps the embedding and
    the output projection in int8, its default for int4). Returns what was done (report.json)."""
    import nncf

    if precision == "int8":
        nncf.compress_weights(ov_model, mode=nncf.CompressWeightsMode.INT8_ASYM)
        return {"mode": "int8_asym", "group_size": -1}
    try:
        nncf.compress_weights(ov_model, mode=nncf.CompressWeightsMode.INT4_SYM, group_size=group_size, ratio=1.0)
    except nncf.InvalidGroupSizeError as exc:  # a property of the model, not a bug: the user's key to change
        sizes = sorted({int(n) for n in re.findall(r"channel size: (\d+)", str(exc))})
        raise BadInputError(
            f"engine.block_size {group_size} does not divide the input size of this model's MatMuls "
            f"({', '.join(map(str, sizes)) or 'see NNCF'}): NNCF's int4 groups must divide it; choose a "
            "divisor of each"
        ) from None
    return {"mode": "int4_sym", "group_size": group_size, "ratio": 1.0, "backup": "int8_asym"}


def write_ir(ov_model: Any, hf_dir: Path, out: Path) -> bool:
    """Save the IR (fp32 where not compressed) and what the pipeline reads beside it: the HF
    configs, the tokenizer files, and OpenVINO's own tokenizer/detokenizer models.
    Returns whether the OpenVINO tokenizer could be made (the runner feeds token ids either way)."""
    import openvino as ov

    ov.save_model(ov_model, out / MODEL_XML, compress_to_fp16=False)
    for name in (*COPIED, *COPIED_TOO):
        if (hf_dir / name).is_file():
            shutil.copyfile(hf_dir / name, out / name)
    try:
        from openvino_tokenizers import convert_tokenizer
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(hf_dir, local_files_only=True)
        encoder, decoder = convert_tokenizer(tokenizer, with_detokenizer=True)
        ov.save_model(encoder, out / "openvino_tokenizer.xml")
        ov.save_model(decoder, out / "openvino_detokenizer.xml")
    except Exception:  # the pipeline then runs without one: gates hands it token ids
        return False
    return True
