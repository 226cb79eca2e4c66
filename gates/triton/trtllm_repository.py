"""The standard TensorRT-LLM model repository for Triton (tensorrtllm_backend's inflight_batcher_llm).

Four models: ``preprocessing`` (tokenize, Python), ``tensorrt_llm`` (the engine, C++ backend,
in-flight batching, decoupled for streaming), ``postprocessing`` (detokenize, Python) and
``ensemble`` (wires them). We render every ``config.pbtxt`` from the engine artifact; the two
Python ``model.py`` files come from the Triton TensorRT-LLM container on the GPU runner
(``template_dir``, by default where NVIDIA's image ships them). Serving it needs that runner;
rendering is tested everywhere.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

DEFAULT_TEMPLATE_DIR = Path("/app/all_models/inflight_batcher_llm")


@dataclasses.dataclass(frozen=True)
class TrtllmRepoSpec:
    engine_dir: Path
    tokenizer_dir: Path
    max_batch_size: int = 8
    decoupled: bool = True
    kv_cache_free_gpu_mem_fraction: float = 0.85
    instances: int = 1


def _params(values: dict[str, str]) -> str:
    out = []
    for key, value in values.items():
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        out.append(f'parameters: {{ key: "{key}" value: {{ string_value: "{escaped}" }} }}')
    return "\n".join(out)


def render(spec: TrtllmRepoSpec) -> dict[str, str]:
    """model name -> config.pbtxt text."""
    b = spec.max_batch_size
    pre = f"""name: "preprocessing"
backend: "python"
max_batch_size: {b}
input [
  {{ name: "QUERY" data_type: TYPE_STRING dims: [ 1 ] }},
  {{ name: "REQUEST_OUTPUT_LEN" data_type: TYPE_INT32 dims: [ 1 ] }}
]
output [
  {{ name: "INPUT_ID" data_type: TYPE_INT32 dims: [ -1 ] }},
  {{ name: "REQUEST_INPUT_LEN" data_type: TYPE_INT32 dims: [ 1 ] }},
  {{ name: "REQUEST_OUTPUT_LEN" data_type: TYPE_INT32 dims: [ -1 ] }}
]
instance_group [ {{ count: {spec.instances} kind: KIND_CPU }} ]
{_params({"tokenizer_dir": str(spec.tokenizer_dir), "add_special_tokens": "true"})}
"""
    engine = f"""name: "tensorrt_llm"
backend: "tensorrtllm"
max_batch_size: {b}
model_transaction_policy {{ decoupled: {str(spec.decoupled).lower()} }}
dynamic_batching {{ }}
input [
  {{ name: "input_ids" data_type: TYPE_INT32 dims: [ -1 ] allow_ragged_batch: true }},
  {{ name: "input_lengths" data_type: TYPE_INT32 dims: [ 1 ] reshape: {{ shape: [ ] }} }},
  {{ name: "request_output_len" data_type: TYPE_INT32 dims: [ 1 ] reshape: {{ shape: [ ] }} }},
  {{ name: "streaming" data_type: TYPE_BOOL dims: [ 1 ] reshape: {{ shape: [ ] }} optional: true }}
]
output [
  {{ name: "output_ids" data_type: TYPE_INT32 dims: [ -1, -1 ] }},
  {{ name: "sequence_length" data_type: TYPE_INT32 dims: [ -1 ] }}
]
instance_group [ {{ count: 1 kind: KIND_GPU }} ]
{
        _params(
            {
                "gpt_model_type": "inflight_fused_batching",
                "gpt_model_path": str(spec.engine_dir),
                "batching_strategy": "inflight_fused_batching",
                "kv_cache_free_gpu_mem_fraction": str(spec.kv_cache_free_gpu_mem_fraction),
                "exclude_input_in_output": "true",
            }
        )
    }
"""
    post = f"""name: "postprocessing"
backend: "python"
max_batch_size: {b}
input [
  {{ name: "TOKENS_BATCH" data_type: TYPE_INT32 dims: [ -1, -1 ] }},
  {{ name: "SEQUENCE_LENGTH" data_type: TYPE_INT32 dims: [ -1 ] }}
]
output [ {{ name: "OUTPUT" data_type: TYPE_STRING dims: [ -1 ] }} ]
instance_group [ {{ count: {spec.instances} kind: KIND_CPU }} ]
{_params({"tokenizer_dir": str(spec.tokenizer_dir), "skip_special_tokens": "true"})}
"""
    ensemble = f"""name: "ensemble"
platform: "ensemble"
max_batch_size: {b}
input [
  {{ name: "text_input" data_type: TYPE_STRING dims: [ 1 ] }},
  {{ name: "max_tokens" data_type: TYPE_INT32 dims: [ 1 ] }},
  {{ name: "stream" data_type: TYPE_BOOL dims: [ 1 ] optional: true }}
]
output [ {{ name: "text_output" data_type: TYPE_STRING dims: [ -1 ] }} ]
ensemble_scheduling {{
  step [
    {{
      model_name: "preprocessing" model_version: -1
      input_map {{ key: "QUERY" value: "text_input" }}
      input_map {{ key: "REQUEST_OUTPUT_LEN" value: "max_tokens" }}
      output_map {{ key: "INPUT_ID" value: "_INPUT_ID" }}
      output_map {{ key: "REQUEST_INPUT_LEN" value: "_REQUEST_INPUT_LEN" }}
      output_map {{ key: "REQUEST_OUTPUT_LEN" value: "_REQUEST_OUTPUT_LEN" }}
    }},
    {{
      model_name: "tensorrt_llm" model_version: -1
      input_map {{ key: "input_ids" value: "_INPUT_ID" }}
      input_map {{ key: "input_lengths" value: "_REQUEST_INPUT_LEN" }}
      input_map {{ key: "request_output_len" value: "_REQUEST_OUTPUT_LEN" }}
      input_map {{ key: "streaming" value: "stream" }}
      output_map {{ key: "output_ids" value: "_TOKENS_BATCH" }}
      output_map {{ key: "sequence_length" value: "_SEQUENCE_LENGTH" }}
    }},
    {{
      model_name: "postprocessing" model_version: -1
      input_map {{ key: "TOKENS_BATCH" value: "_TOKENS_BATCH" }}
      input_map {{ key: "SEQUENCE_LENGTH" value: "_SEQUENCE_LENGTH" }}
      output_map {{ key: "OUTPUT" value: "text_output" }}
    }}
  ]
}}
"""
    return {"preprocessing": pre, "tensorrt_llm": engine, "postprocessing": post, "ensemble": ensemble}


def write(repo: Path, spec: TrtllmRepoSpec, template_dir: Path = DEFAULT_TEMPLATE_DIR) -> Path:
    """Write the four models; Python models take their model.py from ``template_dir`` when present."""
    for name, text in render(spec).items():
        (repo / name / "1").mkdir(parents=True, exist_ok=True)
        (repo / name / "config.pbtxt").write_text(text)
        source = template_dir / name / "1" / "model.py"
        if name in ("preprocessing", "postprocessing") and source.is_file():
            shutil.copyfile(source, repo / name / "1" / "model.py")
    return repo
