"""A TensorRT-LLM engine's Triton repository, rendered from tensorrtllm_backend's own templates.

The templates are ``all_models/inflight_batcher_llm`` of triton-inference-server/tensorrtllm_backend,
vendored unchanged under ``gates/triton/templates/trtllm/`` (``SOURCE`` records the commit): four
models, ``preprocessing`` (tokenize, Python), ``tensorrt_llm`` (the engine in the C++
``tensorrtllm`` backend, in-flight batching, decoupled for streaming), ``postprocessing``
(detokenize, Python) and ``ensemble`` (wires them; speaks ``text_input``/``max_tokens``/``stream``
-> ``text_output``).

Rendering is what the backend's ``tools/fill_template.py`` does (``string.Template`` over
``${var}`` placeholders), with every placeholder given a value or, for the optional
``parameters`` this engine leaves to the backend's defaults, the parameter entry removed (the
backend treats an absent parameter as unset, as it does an unfilled one). The result is parsed as
Triton's ``ModelConfig`` protobuf, so a rendered file that Triton could not read is an error here,
and the models are renamed per arm (``<arm>`` is the ensemble, ``<arm>_tensorrt_llm`` …) so a
baseline and a candidate engine live side by side in one repository.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
from pathlib import Path
from string import Template
from typing import Any

TEMPLATE_DIR = Path(__file__).with_name("templates") / "trtllm"
MODELS = ("preprocessing", "tensorrt_llm", "postprocessing", "ensemble")
PLACEHOLDER = re.compile(r"\$\{(\w+)\}")


@dataclasses.dataclass(frozen=True)
class TrtllmRepoSpec:
    engine_dir: Path
    tokenizer_dir: Path
    max_batch_size: int = 8
    decoupled: bool = True
    kv_cache_free_gpu_mem_fraction: float = 0.85
    instances: int = 1
    max_queue_delay_microseconds: int = 0


def substitutions(spec: TrtllmRepoSpec) -> dict[str, dict[str, str]]:
    """Per model, the value of each placeholder this engine sets (the rest: the backend's defaults)."""
    common = {"triton_max_batch_size": str(spec.max_batch_size), "logits_datatype": "TYPE_FP32"}
    return {
        "preprocessing": {
            "triton_max_batch_size": str(spec.max_batch_size),
            "tokenizer_dir": str(spec.tokenizer_dir),
            "add_special_tokens": "True",
            "preprocessing_instance_count": str(spec.instances),
            "engine_dir": str(spec.engine_dir),
            "max_num_images": "0",
        },
        "tensorrt_llm": common
        | {
            "triton_backend": "tensorrtllm",
            "decoupled_mode": str(spec.decoupled).lower(),
            "engine_dir": str(spec.engine_dir),
            "batching_strategy": "inflight_fused_batching",
            "batch_scheduler_policy": "guaranteed_no_evict",
            "kv_cache_free_gpu_mem_fraction": str(spec.kv_cache_free_gpu_mem_fraction),
            "exclude_input_in_output": "True",
            "enable_kv_cache_reuse": "False",
            "max_beam_width": "1",
            "encoder_input_features_data_type": "TYPE_FP16",
        },
        "postprocessing": {
            "triton_max_batch_size": str(spec.max_batch_size),
            "tokenizer_dir": str(spec.tokenizer_dir),
            "skip_special_tokens": "True",
            "postprocessing_instance_count": str(spec.instances),
        },
        "ensemble": common,
    }


def template_text(model: str, template_dir: Path = TEMPLATE_DIR) -> str:
    return (template_dir / model / "config.pbtxt").read_text()


def fill_template(text: str, values: dict[str, str], queue: tuple[int, int] = (0, 0)) -> str:
    """``tools/fill_template.py``: ``string.Template.safe_substitute`` over ``${var}`` placeholders,
    with its defaults for ``max_queue_size``/``max_queue_delay_microseconds`` (``queue``) and
    refusing a key the template does not have (as that tool asserts)."""
    names = set(PLACEHOLDER.findall(text))
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"keys {unknown} do not exist in the template")
    defaults = {"max_queue_size": str(queue[0]), "max_queue_delay_microseconds": str(queue[1])}
    return Template(text).safe_substitute(defaults | values)


def _model_config() -> Any:
    from tritonclient.grpc import model_config_pb2  # ships with tritonclient[grpc]

    return model_config_pb2.ModelConfig()


def parse_config(text: str) -> Any:
    """A rendered config.pbtxt as Triton's ``ModelConfig`` (protobuf text format); raises on anything else."""
    from google.protobuf import text_format

    return text_format.Parse(text, _model_config())


def render_model(model: str, spec: TrtllmRepoSpec, prefix: str = "", template_dir: Path = TEMPLATE_DIR) -> Any:
    """One model's ``ModelConfig``: filled, unset optional parameters removed, renamed ``<prefix>_<model>``."""
    text = template_text(model, template_dir)
    # values land inside "..." (paths) or bare (numbers, enums): escaped for protobuf text strings, which
    # leaves the bare ones as they are (fill_template.py itself would break on a path with a quote)
    values = {k: v.replace("\\", "\\\\").replace('"', '\\"') for k, v in substitutions(spec)[model].items()}
    filled = fill_template(text, values, (0, spec.max_queue_delay_microseconds))
    config = parse_config(filled)
    for key in [k for k, v in config.parameters.items() if PLACEHOLDER.fullmatch(v.string_value)]:
        del config.parameters[key]  # left to the backend's default, as an unfilled template leaves it
    from google.protobuf import text_format

    left = PLACEHOLDER.findall(text_format.MessageToString(config))
    if left:
        raise ValueError(f"{model}: placeholders left unfilled outside parameters: {sorted(set(left))}")
    names = {m: f"{prefix}_{m}" if prefix else m for m in MODELS}
    names["ensemble"] = prefix or "ensemble"
    config.name = names[model]
    for step in config.ensemble_scheduling.step:
        step.model_name = names[step.model_name]
    return config


def render(spec: TrtllmRepoSpec, prefix: str = "", template_dir: Path = TEMPLATE_DIR) -> dict[str, str]:
    """Triton model name -> config.pbtxt text, for the four models of one engine."""
    from google.protobuf import text_format

    out = {}
    for model in MODELS:
        config = render_model(model, spec, prefix, template_dir)
        out[config.name] = text_format.MessageToString(config)
    return out


def write(repo: Path, spec: TrtllmRepoSpec, prefix: str = "", template_dir: Path = TEMPLATE_DIR) -> Path:
    """Write the four models (the Python ones with the backend's own ``model.py``); returns the
    ensemble's directory (what a client calls)."""
    for (name, text), model in zip(render(spec, prefix, template_dir).items(), MODELS, strict=True):
        (repo / name / "1").mkdir(parents=True, exist_ok=True)
        (repo / name / "config.pbtxt").write_text(text)
        source = template_dir / model / "1" / "model.py"
        if source.is_file():
            shutil.copyfile(source, repo / name / "1" / "model.py")
    return repo / (prefix or "ensemble")
