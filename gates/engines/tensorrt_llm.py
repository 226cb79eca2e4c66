"""The ``tensorrt-llm`` backend: real engine builds on GPU runners, a clear refusal elsewhere.

Build path: the candidate artifact (Model Optimizer state) is restored, exported as a TensorRT-LLM
checkpoint with ``export_tensorrt_llm_checkpoint``, and ``trtllm-build`` turns it into an engine
for *this* GPU's architecture (engines are not portable across architectures, so the
architecture is part of the artifact's inputs). Sizes come from ``engine:`` in the config. The
artifact is self-contained: ``engine/``, ``tokenizer/`` and the stop tokens in ``engine.json``.

Serving in the gate: gates' own Triton Python model runs the engine with TensorRT-LLM's Python
runtime (:class:`~gates.engines.trtllm_runner.TrtllmRunner`), so load and drift speak the same
protocol as for every other engine (the ensemble has no per-position log-probabilities).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from gates.artifacts import ArtifactStore, EngineBuild, ModelRef
from gates.config.engine import EngineSection
from gates.config.schema import Pipeline
from gates.engines.base import ConfigProblem, KernelSupport
from gates.engines.runner import Runner
from gates.engines.trtllm_runner import TrtllmRunner
from gates.errors import CapabilityError, SubprocessError
from gates.models.loader import load_model, stop_token_ids
from gates.triton.repository import write_model
from gates.triton.trtllm_repository import TrtllmRepoSpec
from gates.triton.trtllm_repository import write as write_trtllm_repository

HINT = (
    "engine.backend 'tensorrt-llm' needs the tensorrt_llm package and an NVIDIA GPU. On a self-hosted GPU "
    "runner install it from NVIDIA's index (`pip install -e '.[gpu]' --extra-index-url https://pypi.nvidia.com`); "
    "PyPI's tensorrt-llm is only a stub. On CPU machines use engine.backend: torch."
)


def gpu_arch() -> str:
    import torch

    major, minor = torch.cuda.get_device_capability()
    return f"sm{major}{minor}"


def build_command(
    checkpoint_dir: Path, engine_dir: Path, cfg: EngineSection, trtllm_build: str = "trtllm-build"
) -> list[str]:
    return [
        trtllm_build,
        f"--checkpoint_dir={checkpoint_dir}",
        f"--output_dir={engine_dir}",
        f"--max_batch_size={cfg.max_batch_size}",
        f"--max_input_len={cfg.max_input_len}",
        f"--max_seq_len={cfg.max_input_len + cfg.max_output_len}",
        "--gemm_plugin=auto",
        "--remove_input_padding=enable",
        "--paged_kv_cache=enable",
    ]


def export_checkpoint(model_path: Path, out: Path, tokenizer_out: Path, decoder_type: str = "llama") -> list[int]:
    """Export the TensorRT-LLM checkpoint and the tokenizer; returns the model's stop token ids."""
    import torch
    from modelopt.torch.export import export_tensorrt_llm_checkpoint

    model, tokenizer = load_model(model_path)
    tokenizer.save_pretrained(tokenizer_out)
    stops = [int(i) for i in stop_token_ids(model, tokenizer)]
    with torch.inference_mode():
        export_tensorrt_llm_checkpoint(
            model.cuda().half(),
            decoder_type=decoder_type,
            dtype=torch.float16,
            export_dir=str(out),
            inference_tensor_parallel=1,
        )
    return stops


def build_batch(build: EngineBuild) -> int:
    """The engine's max batch size, as trtllm-build was told (engine.json), 8 when unrecorded."""
    spec = build.serve_path / "engine.json"
    if not spec.is_file():
        return 8
    command = json.loads(spec.read_text()).get("command", [])
    sizes = [int(a.split("=", 1)[1]) for a in command if str(a).startswith("--max_batch_size=")]
    return sizes[0] if sizes else 8


class TensorRTLLMEngine:
    name = "tensorrt-llm"
    # TensorRT-LLM's quantization support matrix: the least compute capability per format
    kernels = KernelSupport(
        "TensorRT-LLM engine (trtllm-build)",
        {
            **dict.fromkeys(("int8", "int8_sq", "int8_wo", "int4_awq", "int4_wo"), (8, 0)),
            **dict.fromkeys(("fp8", "fp8_pcpt", "w4a8_awq"), (8, 9)),
            **dict.fromkeys(("nvfp4", "nvfp4_awq"), (10, 0)),
        },
        cuda=True,
    )

    options: frozenset[str] = frozenset()

    def check_config(self, pipeline: Pipeline) -> list[ConfigProblem]:
        fmt = pipeline.quant_format
        if fmt == "none" or fmt in self.kernels.formats:
            return []
        known = ", ".join(self.kernels.formats)
        return [
            ConfigProblem(
                ("optimize", "quantize", "format"), f"engine.backend 'tensorrt-llm' builds {known}; not {fmt!r}"
            )
        ]

    def check_available(self) -> None:
        if importlib.util.find_spec("tensorrt_llm") is None:
            raise CapabilityError(f"TensorRT-LLM is not installed here. {HINT}")
        import torch

        if not torch.cuda.is_available():
            raise CapabilityError(f"no CUDA device is visible. {HINT}")
        if shutil.which("trtllm-build") is None:
            raise CapabilityError(f"the trtllm-build command is not on PATH. {HINT}")

    def build(self, store: ArtifactStore, model: ModelRef, cfg: EngineSection) -> EngineBuild:
        self.check_available()
        arch = gpu_arch()

        def write(out: Path) -> dict[str, Any]:
            checkpoint, engine = out / "checkpoint", out / "engine"
            stops = export_checkpoint(model.path, checkpoint, out / "tokenizer")
            cmd = build_command(checkpoint, engine, cfg, shutil.which("trtllm-build") or "trtllm-build")
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
            if proc.returncode != 0:
                raise SubprocessError("trtllm-build failed", cmd, proc.returncode, proc.stdout, proc.stderr)
            (out / "engine.json").write_text(
                json.dumps(
                    {
                        "backend": self.name,
                        "gpu_arch": arch,
                        "model_digest": model.digest,
                        "command": cmd,
                        "stop_ids": stops,
                    },
                    indent=2,
                )
            )
            return {"gpu_arch": arch}

        art = store.get_or_build(
            "engine-trtllm", {"model": model.digest, "engine": cfg.model_dump(), "gpu_arch": arch}, write
        )
        note = (
            f"TensorRT-LLM engine for {arch}, run by TensorRT-LLM's Python runtime in gates' Triton model: one "
            "request at a time per instance, no in-flight batching (Triton's tensorrtllm backend, whose repository is "
            "rendered beside the gate's, batches), so throughput under concurrency is a lower bound"
        )
        return EngineBuild(self.name, model, art.path, art.digest, art.reused, True, note, device="cuda", dtype="fp16")

    def write_serving(self, repo: Path, name: str, build: EngineBuild, threads: int) -> Path:
        """gates' Python model over the engine (what the gate loads), and beside the repository the
        same engine's repository for Triton's ``tensorrtllm`` backend, rendered from
        tensorrtllm_backend's templates, for deployments with in-flight batching (not loaded here:
        its ensemble has no per-position log-probabilities for the drift check)."""
        spec = TrtllmRepoSpec(
            engine_dir=build.serve_path / "engine",
            tokenizer_dir=build.serve_path / "tokenizer",
            max_batch_size=build_batch(build),
        )
        write_trtllm_repository(repo.parent / f"{name}-tensorrtllm", spec, prefix=name)
        return write_model(repo, name, build.serve_path, threads, device="cuda")

    def runner(self, path: Path, threads: int) -> Runner:
        return TrtllmRunner(path)
