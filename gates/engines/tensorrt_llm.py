"""The ``tensorrt-llm`` backend: real engine builds on GPU runners, a clear refusal elsewhere.

Build path: the candidate artifact (Model Optimizer state) is restored, exported as a TensorRT-LLM
checkpoint with ``export_tensorrt_llm_checkpoint``, and ``trtllm-build`` turns it into an engine
for *this* GPU's architecture (engines are not portable across architectures, so the
architecture is part of the artifact's inputs). Sizes come from ``engine:`` in the config.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from gates.artifacts import ArtifactStore
from gates.config.engine import EngineSection
from gates.engines.base import EngineBuild, KernelSupport, ModelRef
from gates.engines.runner import Runner
from gates.errors import CapabilityError, SubprocessError
from gates.models.loader import load_model
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


def export_checkpoint(model_path: Path, out: Path, decoder_type: str = "llama") -> None:
    import torch
    from modelopt.torch.export import export_tensorrt_llm_checkpoint

    model, _ = load_model(model_path)
    with torch.inference_mode():
        export_tensorrt_llm_checkpoint(
            model.cuda().half(),
            decoder_type=decoder_type,
            dtype=torch.float16,
            export_dir=str(out),
            inference_tensor_parallel=1,
        )


def build_batch(build: EngineBuild) -> int:
    """The engine's max batch size, as trtllm-build was told (engine.json), 8 when unrecorded."""
    spec = build.serve_path.parent / "engine.json"
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
            export_checkpoint(model.path, checkpoint)
            cmd = build_command(checkpoint, engine, cfg, shutil.which("trtllm-build") or "trtllm-build")
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
            if proc.returncode != 0:
                raise SubprocessError("trtllm-build failed", cmd, proc.returncode, proc.stdout, proc.stderr)
            (out / "engine.json").write_text(
                json.dumps(
                    {"backend": self.name, "gpu_arch": arch, "model_digest": model.digest, "command": cmd}, indent=2
                )
            )
            return {"gpu_arch": arch}

        art = store.get_or_build(
            "engine-trtllm", {"model": model.digest, "engine": cfg.model_dump(), "gpu_arch": arch}, write
        )
        return EngineBuild(
            self.name, model, art.path / "engine", art.digest, art.reused, True, f"TensorRT-LLM engine for {arch}"
        )

    def write_serving(self, repo: Path, name: str, build: EngineBuild, threads: int) -> Path:
        """Render the engine's Triton repository from tensorrtllm_backend's templates (``<name>`` is the
        ensemble), then refuse: load and drift speak gates' protocol (PROMPT/TOKEN_IDS/log-probabilities),
        the ensemble speaks text_input/max_tokens -> text_output without per-position log-probabilities.
        The rendered repository stays for inspection; nothing half-served is measured."""
        spec = TrtllmRepoSpec(
            engine_dir=build.serve_path, tokenizer_dir=build.model.path, max_batch_size=build_batch(build)
        )
        ensemble = write_trtllm_repository(repo, spec, prefix=name)
        raise CapabilityError(
            f"the TensorRT-LLM engine's Triton repository is rendered ({ensemble}), but gates' load and drift do not "
            "speak its ensemble's protocol yet (text_input/max_tokens -> text_output, no per-position "
            "log-probabilities): use engine.backend torch-fp8 or torch-int8 on GPU runners"
        )

    def runner(self, path: Path, threads: int) -> Runner:
        raise CapabilityError("a TensorRT-LLM engine runs in Triton's tensorrtllm backend, not in-process")
