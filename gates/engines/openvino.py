"""The ``openvino`` backend: OpenVINO's CPU plugin in both arms, batched by OpenVINO GenAI.

Both arms are exported here from the same Hugging Face checkpoint as one stateful OpenVINO IR
(gates/engines/openvino_export.py): the baseline in fp32, the candidate with its weights
compressed by NNCF (``engine.precision`` int8: per output channel; int4: symmetric groups of
``engine.block_size``). Activations stay fp32 unless ``engine.accuracy_level`` is 4, where the CPU
plugin quantizes them to int8 per group of ``block_size`` at run time for the compressed MatMuls
(its fast integer kernels; the ``onnxruntime-genai`` engine's ``accuracy_level`` 4 does the same).
The KV cache is fp32 in both arms, so only the weights differ.

As with the ONNX Runtime GenAI engine, the fp32 build is checked against the model it came from
(top-1 and KL of teacher-forced next-token predictions on fixed texts) and refused with the
figures when it does not reproduce it. Served, greedy streamed requests go through
``ContinuousBatchingPipeline`` (continuous batching, paged attention); scoring and sampling run
the same IR directly (gates/engines/openvino_runner.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gates.artifacts import ArtifactStore, EngineBuild, ModelRef
from gates.config.engine import EngineSection
from gates.config.schema import Pipeline
from gates.engines import openvino_export as export
from gates.engines.base import ConfigProblem, KernelSupport
from gates.engines.numerics import CHECK_KL_MAX, CHECK_TOP1_MIN, against_hf
from gates.engines.openvino_runner import OpenVinoRunner
from gates.engines.ort_genai import light_tokenizer
from gates.errors import BadInputError, CapabilityError
from gates.triton.repository import write_model

INSTALL_HINT = (
    "pip install openvino==2026.4.1 openvino-genai==2026.4.1.0 openvino-tokenizers==2026.4.1.0 nncf==3.4.0 "
    "(in this project's dependencies: run `make install`)"
)
BUILD_VERSION = 1  # bump when the build below changes: part of the artifact's cache key


def precision_of(model: ModelRef, cfg: EngineSection) -> str:
    return "fp32" if model.role == "baseline" else cfg.precision


def dynamic_group(precision: str, cfg: EngineSection) -> int:
    """The CPU plugin's run-time int8 activation groups for compressed weights (0: fp32 activations)."""
    return cfg.block_size if precision != "fp32" and cfg.accuracy_level == 4 else 0


def kernels(precision: str, cfg: EngineSection) -> str:
    if precision == "fp32":
        return "OpenVINO CPU fp32 MatMul (oneDNN)"
    weights = "int8 per channel" if precision == "int8" else f"int4 groups of {cfg.block_size}"
    compute = "int8" if dynamic_group(precision, cfg) else "fp32"
    return f"OpenVINO CPU weight-compressed MatMul ({weights}, {compute} compute)"


class OpenVinoEngine:
    name = "openvino"
    kernels = KernelSupport(
        "OpenVINO CPU plugin weight-compressed MatMul",
        {"int8_wo": (0, 0), "int4_wo": (0, 0)},
        cpu=True,
        note="engine.precision int8|int4: NNCF's weight compression of the exported IR, not this artifact",
    )

    options = frozenset({"precision", "block_size", "accuracy_level"})

    def check_config(self, pipeline: Pipeline) -> list[ConfigProblem]:
        problems = []
        if pipeline.quant_format != "none":
            problems.append(
                ConfigProblem(
                    ("optimize", "quantize", "format"),
                    "engine.backend 'openvino' compresses the candidate's weights with NNCF (engine.precision); "
                    f"optimize.quantize.format is {pipeline.quant_format!r}: remove optimize.quantize",
                )
            )
        if pipeline.engine.accuracy_level not in (1, 4):
            problems.append(
                ConfigProblem(
                    ("engine", "accuracy_level"),
                    "engine.backend 'openvino' computes in fp32 (accuracy_level 1) or with int8 activations "
                    f"(4); {pipeline.engine.accuracy_level} is neither",
                )
            )
        return problems

    def check_available(self) -> None:
        try:
            import nncf  # noqa: F401
            import openvino  # noqa: F401
            import openvino_genai  # noqa: F401
        except ImportError as exc:
            raise CapabilityError(f"OpenVINO is not installed ({exc}); {INSTALL_HINT}") from exc

    def build(self, store: ArtifactStore, model: ModelRef, cfg: EngineSection) -> EngineBuild:
        self.check_available()
        precision = precision_of(model, cfg)
        group = dynamic_group(precision, cfg)
        wanted = {"block_size": cfg.block_size} if precision == "int4" else {}

        def write(out: Path) -> dict[str, Any]:
            ov_model, geometry = export.export_stateful(model.path)
            compression = export.compress(ov_model, precision, cfg.block_size) if precision != "fp32" else {}
            ov_tokenizer = export.write_ir(ov_model, model.path, out)
            spec: dict[str, Any] = {
                "backend": self.name,
                "precision": precision,
                "compression": compression,
                "dynamic_quantization_group_size": group,
                "geometry": geometry,
                "openvino_tokenizer": ov_tokenizer,
                "model_digest": model.digest,
                "model_path": str(model.path),
            }
            (out / "engine.json").write_text(json.dumps(spec, indent=2))  # the runner reads it below
            measured = check_numerics(model.path, out)
            if precision == "fp32" and (measured["top1"] < CHECK_TOP1_MIN or measured["kl"] > CHECK_KL_MAX):
                raise BadInputError(
                    f"the OpenVINO fp32 build of {model.path} does not reproduce the Hugging Face model: "
                    f"top-1 agreement {measured['top1']:.3f} (need ≥ {CHECK_TOP1_MIN}), mean KL "
                    f"{measured['kl']:.4g} (need ≤ {CHECK_KL_MAX}) over {measured['positions']} positions; "
                    "refusing to serve it (the export may not support this architecture)"
                )
            light = light_tokenizer(model.path, out)
            if light:
                spec["tokenizer"] = light
                (out / "engine.json").write_text(json.dumps(spec, indent=2))
            return {"measured": {"vs_hf": measured}}

        inputs = {"model": model.digest, "precision": precision, "v": BUILD_VERSION, "dq": group, **wanted}
        art = store.get_or_build("engine-openvino", inputs, write)
        note = f"{kernels(precision, cfg)}: real kernels, the same engine in both arms"
        recipe = (
            "" if precision == "fp32" else f"openvino-{precision} (nncf{', g' + str(cfg.block_size) if wanted else ''})"
        )
        quant = quantization(precision, cfg)
        return EngineBuild(self.name, model, art.path, art.digest, art.reused, True, note, recipe, quantization=quant)

    def write_serving(self, repo: Path, name: str, build: EngineBuild, threads: int) -> Path:
        return write_model(repo, name, build.serve_path, threads)

    def runner(self, path: Path, threads: int) -> OpenVinoRunner:
        return OpenVinoRunner(path, threads)


def quantization(precision: str, cfg: EngineSection) -> dict[str, Any]:
    """What NNCF did to the weights (empty for the fp32 build): report.json's ``quantization``."""
    if precision == "fp32":
        return {}
    group = dynamic_group(precision, cfg)
    return {
        "format": f"{precision}_wo",
        "by": "nncf compress_weights (OpenVINO)",
        "block_size": cfg.block_size if precision == "int4" else -1,
        "accuracy_level": cfg.accuracy_level,
        "compute": "int8" if group else "fp32",
    }


def check_numerics(hf_dir: Path, engine_dir: Path) -> dict[str, float]:
    """Teacher-forced next-token predictions of the build against the Hugging Face model."""
    return against_hf(
        hf_dir, lambda threads, tokenizer: OpenVinoRunner(engine_dir, threads, tokenizer=tokenizer), "OpenVINO"
    )


__all__ = ["OpenVinoEngine"]
