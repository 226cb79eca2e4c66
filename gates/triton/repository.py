"""Writes a Triton model repository for gates models (``config.pbtxt`` + ``1/model.py``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import gates
from gates.config.engine import ServeSection

PYTHON_MODEL = Path(__file__).with_name("python_model.py")

_IO = """
input [
  { name: "PROMPT" data_type: TYPE_STRING dims: [ 1 ] },
  { name: "MAX_NEW_TOKENS" data_type: TYPE_INT32 dims: [ 1 ] },
  { name: "TOP_K" data_type: TYPE_INT32 dims: [ 1 ] optional: true },
  { name: "FORCED_IDS" data_type: TYPE_INT64 dims: [ -1 ] optional: true },
  { name: "LOGPROB_IDS" data_type: TYPE_INT64 dims: [ -1, -1 ] optional: true },
  { name: "STREAM" data_type: TYPE_BOOL dims: [ 1 ] optional: true },
  { name: "TEMPERATURE" data_type: TYPE_FP32 dims: [ 1 ] optional: true },
  { name: "SEED" data_type: TYPE_INT64 dims: [ 1 ] optional: true },
  { name: "PROMPT_IDS" data_type: TYPE_INT64 dims: [ -1 ] optional: true },
  { name: "PREFILL" data_type: TYPE_BOOL dims: [ 1 ] optional: true }
]
output [
  { name: "TEXT" data_type: TYPE_STRING dims: [ 1 ] },
  { name: "TOKEN_IDS" data_type: TYPE_INT64 dims: [ -1 ] },
  { name: "TOP_IDS" data_type: TYPE_INT64 dims: [ -1, -1 ] },
  { name: "TOP_LOGPROBS" data_type: TYPE_FP32 dims: [ -1, -1 ] },
  { name: "SELECTED_LOGPROBS" data_type: TYPE_FP32 dims: [ -1, -1 ] },
  { name: "PROMPT_TOKENS" data_type: TYPE_INT32 dims: [ 1 ] }
]
""".strip()


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_config(
    name: str, artifact_path: Path, threads: int = 1, instances: int = 1, device: str = "cpu", delay_ms: float = 0
) -> str:
    """The Python model's config; on ``device`` cuda its instance group is on the GPU (``KIND_GPU``),
    so Triton places the instance (and reports it) where the engine runs the model. ``delay_ms``:
    a served delay added to every generated token (fault injection: a slower canary of the same
    model, for canary analysis tests and drills); 0 adds the parameter not at all."""
    params = {
        "artifact_path": str(artifact_path),
        "threads": str(threads),
        # The stub ignores PYTHONPATH; tell model.py where the gates package lives.
        "python_path": str(Path(gates.__file__).resolve().parent.parent),
    }
    if delay_ms:
        params["served_delay_ms"] = str(float(delay_ms))
    lines = [
        f"name: {_quote(name)}",
        'backend: "python"',
        "max_batch_size: 0",
        "model_transaction_policy { decoupled: true }",
        _IO,
        f"instance_group [ {{ count: {instances} kind: {'KIND_GPU' if device == 'cuda' else 'KIND_CPU'} }} ]",
        "version_policy: { latest: { num_versions: 1 } }",
    ]
    for key, value in params.items():
        lines.append(f"parameters: {{ key: {_quote(key)} value: {{ string_value: {_quote(value)} }} }}")
    return "\n".join(lines) + "\n"


def serving(serve: ServeSection) -> dict[str, str]:
    """The serve section's settings that the served model reads (gates/triton/python_model.py)."""
    return {
        "batching": serve.batching.value,
        "max_batch": str(serve.max_batch),
        "kv_cache_gb": str(serve.kv_cache_gb or 0),
    }


def set_parameters(model_dir: Path, params: dict[str, str]) -> None:
    """Add (or replace) string parameters of a written model's config (serving settings the deploy
    stage owns, such as ``batching`` and ``max_batch``, whatever engine wrote the entry)."""
    config = model_dir / "config.pbtxt"
    lines = [
        line
        for line in config.read_text().splitlines()
        if not any(line.startswith(f"parameters: {{ key: {_quote(k)} ") for k in params)
    ]
    for key, value in params.items():
        lines.append(f"parameters: {{ key: {_quote(key)} value: {{ string_value: {_quote(value)} }} }}")
    config.write_text("\n".join(lines) + "\n")


def write_model(
    repo: Path,
    name: str,
    artifact_path: Path,
    threads: int = 1,
    version: int = 1,
    device: str = "cpu",
    delay_ms: float = 0,
) -> Path:
    model_dir = repo / name
    (model_dir / str(version)).mkdir(parents=True, exist_ok=True)
    (model_dir / "config.pbtxt").write_text(
        render_config(name, artifact_path, threads, device=device, delay_ms=delay_ms)
    )
    shutil.copyfile(PYTHON_MODEL, model_dir / str(version) / "model.py")
    return model_dir
