"""The ``onnxruntime-genai`` backend: real low-bit CPU kernels, the same engine in both arms.

Both arms are built by ONNX Runtime GenAI's model builder from the same Hugging Face checkpoint:
the baseline in fp32, the candidate in ``engine.precision`` (int8 or int4 weights in
``MatMulNBits``; ``accuracy_level`` 4 quantizes activations to int8 for the fast integer kernels,
1 computes in fp32). The latency comparison is then like for like: one runtime, one graph shape,
only the kernels differ. The quantization is the builder's own (round-to-nearest or k-quant,
blockwise): Model Optimizer's simulated artifacts run no faster on a CPU.

A built engine is checked against the model it came from before anything is served: the fp32
build must reproduce the Hugging Face model's next-token predictions (top-1 agreement and KL on
fixed texts), else the build is refused with those figures, so the gate never compares two broken
engines. Text goes through transformers' tokenizer (ORT GenAI's own misreads tokenizers converted
from GGUF); the runner feeds token ids.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gates.artifacts import ArtifactStore, EngineBuild, ModelRef
from gates.config.engine import EngineSection
from gates.config.schema import Pipeline
from gates.engines.base import ConfigProblem, KernelSupport
from gates.engines.batching import SchedulerThread
from gates.engines.numerics import CHECK_KL_MAX, CHECK_TEXTS, CHECK_TOP1_MIN, against_hf
from gates.engines.ort_batching import OrtStepEngine
from gates.engines.runner import Sampler, log_softmax
from gates.errors import BadInputError, CapabilityError, SubprocessError
from gates.models.loader import prepare_tokenizer, stop_token_ids
from gates.triton.repository import write_model

INSTALL_HINT = "pip install onnxruntime-genai==0.18.0 onnx onnx-ir (in this project's dependencies: run `make install`)"
BUILD_VERSION = 2  # bump when the build below changes: part of the artifact's cache key


def precision_of(model: ModelRef, cfg: EngineSection) -> str:
    return "fp32" if model.role == "baseline" else cfg.precision


def kernels(precision: str, cfg: EngineSection) -> str:
    if precision == "fp32":
        return "ONNX Runtime fp32 MatMul (MLAS)"
    compute = {1: "fp32", 2: "fp16", 3: "bf16", 4: "int8"}.get(cfg.accuracy_level, "?")
    return f"ONNX Runtime MatMulNBits {precision} weights (block {cfg.block_size}, {compute} compute)"


class OrtGenaiEngine:
    name = "onnxruntime-genai"
    kernels = KernelSupport(
        "ONNX Runtime GenAI MatMulNBits",
        {"int8_wo": (0, 0), "int4_wo": (0, 0)},
        cpu=True,
        note="engine.precision int8|int4: the builder's own quantization, not this artifact",
    )

    options = frozenset({"precision", "block_size", "accuracy_level", "algo"})

    def check_config(self, pipeline: Pipeline) -> list[ConfigProblem]:
        if pipeline.quant_format == "none":
            return []
        return [
            ConfigProblem(
                ("optimize", "quantize", "format"),
                "engine.backend 'onnxruntime-genai' quantizes the candidate with its own builder "
                f"(engine.precision); optimize.quantize.format is {pipeline.quant_format!r}: remove optimize.quantize",
            )
        ]

    def check_available(self) -> None:
        try:
            import onnxruntime_genai  # type: ignore[import-untyped]  # noqa: F401
        except ImportError as exc:
            raise CapabilityError(f"ONNX Runtime GenAI is not installed ({exc}); {INSTALL_HINT}") from exc

    def build(self, store: ArtifactStore, model: ModelRef, cfg: EngineSection) -> EngineBuild:
        self.check_available()
        precision = precision_of(model, cfg)
        options = builder_options(precision, cfg)

        def write(out: Path) -> dict[str, Any]:
            run_builder(model.path, out, precision, options)
            for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"):
                if (model.path / name).is_file():  # transformers' reading of the tokenizer, not the builder's
                    shutil.copyfile(model.path / name, out / name)
            measured = check_numerics(model.path, out)
            light = light_tokenizer(model.path, out)
            if precision == "fp32" and (measured["top1"] < CHECK_TOP1_MIN or measured["kl"] > CHECK_KL_MAX):
                raise BadInputError(
                    f"the ONNX Runtime GenAI fp32 build of {model.path} does not reproduce the Hugging Face "
                    f"model: top-1 agreement {measured['top1']:.3f} (need ≥ {CHECK_TOP1_MIN}), mean KL "
                    f"{measured['kl']:.4g} (need ≤ {CHECK_KL_MAX}) over {measured['positions']} positions; "
                    "refusing to serve it (the builder may not support this architecture)"
                )
            spec: dict[str, Any] = {
                "backend": self.name,
                "precision": precision,
                "options": options,
                "model_digest": model.digest,
            }
            spec = {**spec, "model_path": str(model.path), **({"tokenizer": light} if light else {})}
            (out / "engine.json").write_text(json.dumps(spec, indent=2))
            return {"measured": {"vs_hf": measured}}

        inputs = {"model": model.digest, "precision": precision, "options": options, "v": BUILD_VERSION}
        art = store.get_or_build("engine-ort-genai", inputs, write)
        note = f"{kernels(precision, cfg)}: real kernels, the same engine in both arms"
        recipe = "" if precision == "fp32" else f"ort-{precision} (builder, {options[-1]})"
        quant = quantization(precision, cfg)
        return EngineBuild(self.name, model, art.path, art.digest, art.reused, True, note, recipe, quantization=quant)

    def write_serving(self, repo: Path, name: str, build: EngineBuild, threads: int) -> Path:
        return write_model(repo, name, build.serve_path, threads)

    def runner(self, path: Path, threads: int) -> OrtRunner:
        return OrtRunner(path, threads)


def quantization(precision: str, cfg: EngineSection) -> dict[str, Any]:
    """What the builder did to the weights (empty for the fp32 build): report.json's ``quantization``."""
    if precision == "fp32":
        return {}
    return {
        "format": f"{precision}_wo",  # MatMulNBits: weights in blocks; activations per accuracy_level
        "by": "onnxruntime-genai builder",
        "block_size": cfg.block_size,
        "accuracy_level": cfg.accuracy_level,
        "compute": {1: "fp32", 2: "fp16", 3: "bf16", 4: "int8"}[cfg.accuracy_level],
        "algo": cfg.algo,
    }


def builder_options(precision: str, cfg: EngineSection) -> list[str]:
    if precision == "fp32":
        return []
    return [f"accuracy_level={cfg.accuracy_level}", f"block_size={cfg.block_size}", f"algo_config={cfg.algo}"]


def run_builder(hf_dir: Path, out: Path, precision: str, options: list[str]) -> None:
    with tempfile.TemporaryDirectory(prefix="ort-builder-cache-") as cache:
        cmd = [sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(hf_dir), "-o", str(out)]
        cmd += ["-p", precision, "-e", "cpu", "-c", cache]
        if options:
            cmd += ["--extra_options", *options]
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, env=env)
    if proc.returncode != 0 or not (out / "genai_config.json").is_file():
        raise SubprocessError(
            "the ONNX Runtime GenAI model builder failed", cmd, proc.returncode, proc.stdout, proc.stderr
        )


def check_numerics(hf_dir: Path, engine_dir: Path) -> dict[str, float]:
    """Teacher-forced next-token predictions of the build against the Hugging Face model."""
    return against_hf(
        hf_dir, lambda threads, tokenizer: OrtRunner(engine_dir, threads, tokenizer=tokenizer), "ONNX Runtime GenAI"
    )


TOKENIZER_CHECK_TEXTS = (
    *CHECK_TEXTS,
    "<|im_start|>user\nWhat is 12 + 7?<|im_end|>\n<|im_start|>assistant\n",
    "  Leading spaces, tabs\tand UTF-8: café, naïve, 東京, emoji 🙂.\n\nTwo lines.",
    "",
)


def light_tokenizer(hf_dir: Path, engine_dir: Path) -> dict[str, Any] | None:
    """The served model may tokenize with the ``tokenizers`` library alone (no transformers import:
    ~2 s of every Triton stub's start) when it encodes and decodes exactly as transformers'
    tokenizer does: checked here, at build time, on fixed texts (chat markup, whitespace,
    non-ASCII, empty) and every prefix of their ids.
    Returns what the runner needs (its stop ids), or None: the runner then loads transformers'."""
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    if not (engine_dir / "tokenizer.json").is_file():
        return None
    reference = prepare_tokenizer(AutoTokenizer.from_pretrained(hf_dir, local_files_only=True))
    fast = Tokenizer.from_file(str(engine_dir / "tokenizer.json"))
    for text in TOKENIZER_CHECK_TEXTS:
        ids = [int(i) for i in reference(text)["input_ids"]]
        if fast.encode(text).ids != ids:
            return None
        # served text is decoded too, every prefix when streaming (transformers may clean up spaces)
        for end in range(len(ids) + 1):
            if fast.decode(ids[:end], skip_special_tokens=True) != reference.decode(
                ids[:end], skip_special_tokens=True
            ):
                return None
    return {"library": "tokenizers", "stop_ids": list(stop_token_ids(None, reference))}


def log_softmax_rows(logits: NDArray[Any]) -> NDArray[np.float32]:
    """Row-wise log-softmax in float32 (whole windows: [T, vocab]; float64 would double the memory
    and time for differences far below what the drift figures resolve)."""
    out: NDArray[np.float32] = np.array(logits, dtype=np.float32)  # a copy, changed in place below
    for start in range(0, out.shape[0], 256):  # exp's scratch one chunk of rows at a time (long windows)
        rows = out[start : start + 256]
        rows -= rows.max(axis=-1, keepdims=True)
        rows -= np.log(np.exp(rows).sum(axis=-1, keepdims=True))
    return out


class _TokenizersEncoder:
    """``tokenizers.Tokenizer`` behind the calls made of a runner's tokenizer (encode, decode)."""

    def __init__(self, path: Path):
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(path))

    def __call__(self, text: str) -> dict[str, list[int]]:
        return {"input_ids": list(self.tokenizer.encode(text).ids)}

    def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
        return str(self.tokenizer.decode(ids, skip_special_tokens=skip_special_tokens))


class OrtRunner:
    """An ONNX Runtime GenAI model behind the Runner interface (token ids in, tokens/log-probs out)."""

    def __init__(self, path: Path, threads: int, tokenizer: Any = None):
        import onnxruntime_genai as og

        self.og = og
        config = og.Config(str(path))
        # the arms share the machine: each session gets its share of the cores, not all of them
        config.overlay(json.dumps({"model": {"decoder": {"session_options": {"intra_op_num_threads": threads}}}}))
        self.model = og.Model(config)
        genai = json.loads((path / "genai_config.json").read_text())["model"]
        self.max_len = int(genai.get("context_length", 2048))
        eos = genai.get("eos_token_id", [])
        configured = {int(e) for e in (eos if isinstance(eos, list) else [eos])}
        spec = json.loads((path / "engine.json").read_text()) if (path / "engine.json").is_file() else {}
        light = spec.get("tokenizer") if tokenizer is None else None
        if light and light.get("library") == "tokenizers":  # verified equal at build (light_tokenizer)
            self.tokenizer: Any = _TokenizersEncoder(path / "tokenizer.json")
            self.stop_ids = frozenset(configured | {int(i) for i in light["stop_ids"]})
            return
        if tokenizer is None:
            from transformers import AutoTokenizer

            tokenizer = prepare_tokenizer(AutoTokenizer.from_pretrained(path, local_files_only=True))
        self.tokenizer = tokenizer
        self.stop_ids = frozenset(configured | set(stop_token_ids(None, tokenizer)))

    def encode(self, prompt: str) -> list[int]:
        return [int(i) for i in self.tokenizer(prompt)["input_ids"]]

    def _generator(self, ids: list[int], extra: int) -> Any:
        params = self.og.GeneratorParams(self.model)
        params.set_search_options(max_length=min(self.max_len, len(ids) + extra + 1), do_sample=False)
        generator = self.og.Generator(self.model, params)
        generator.append_tokens(np.asarray([ids], dtype=np.int32))
        return generator

    def stream(self, ids: list[int], max_new: int, temperature: float = 0.0, seed: int = 0) -> Iterator[int]:
        if temperature > 0:
            yield from self._sampled(ids, max_new, Sampler(temperature, seed), [])
            return
        generator = self._generator(ids, max_new)
        for _ in range(max_new):
            if generator.is_done():
                return
            generator.generate_next_token()
            token = int(generator.get_next_tokens()[0])
            yield token
            if token in self.stop_ids:
                return

    def _sampled(self, ids: list[int], max_new: int, sample: Sampler, rows: list[NDArray[np.float32]]) -> Iterator[int]:
        """Sampled tokens: the shared Sampler on the model's logits, each draw fed back with
        ``append_tokens`` (ORT GenAI's own ``do_sample`` draws top-k/top-p with its own generator,
        which would not reproduce the other engines' draws for a seed)."""
        generator = self._generator(ids, max_new)
        token = -1
        for step in range(max_new):
            if step:  # the previous draw is the next position's input
                generator.append_tokens(np.asarray([[token]], dtype=np.int32))
            logits = np.asarray(generator.get_logits()).reshape(-1)
            rows.append(log_softmax(logits))
            token = sample(logits)
            yield token
            if token in self.stop_ids:
                return

    def generate(
        self, ids: list[int], max_new: int, temperature: float = 0.0, seed: int = 0
    ) -> tuple[list[int], NDArray[np.float32]]:
        if temperature > 0:
            sampled_rows: list[NDArray[np.float32]] = []
            drawn = list(self._sampled(ids, max_new, Sampler(temperature, seed), sampled_rows))
            return drawn, np.stack(sampled_rows) if sampled_rows else np.zeros((0, 0), dtype=np.float32)
        generator = self._generator(ids, max_new)
        tokens: list[int] = []
        rows = []
        while len(tokens) < max_new and not generator.is_done():
            rows.append(log_softmax(np.asarray(generator.get_logits()).reshape(-1)))
            generator.generate_next_token()
            tokens.append(int(generator.get_next_tokens()[0]))
            if tokens[-1] in self.stop_ids:
                break
        return tokens, np.stack(rows) if rows else np.zeros((0, 0), dtype=np.float32)

    def score(self, ids: list[int], continuation: list[int]) -> NDArray[np.float32]:
        generator = self._generator(ids, len(continuation))
        rows = []
        for token in continuation:
            rows.append(log_softmax(np.asarray(generator.get_logits()).reshape(-1)))
            generator.append_tokens(np.asarray([[token]], dtype=np.int32))
        return np.stack(rows) if rows else np.zeros((0, 0), dtype=np.float32)

    def score_prefill(self, ids: list[int], continuation: list[int]) -> NDArray[np.float32]:
        """What :meth:`score` returns, from one pass over prompt and continuation: the engine's
        prefill kernels (``append_tokens`` of the whole sequence, every position's logits), which
        can differ from the token-by-token decode kernels ``score`` runs (the drift corpus reports
        both on a sample)."""
        if not ids or not continuation:
            raise ValueError("one-pass scoring needs a prompt of at least one token and a continuation")
        generator = self._generator(ids + continuation[:-1], 1)
        logits = np.asarray(generator.get_output("logits"))
        rows = logits.reshape(-1, logits.shape[-1])[len(ids) - 1 :]
        return log_softmax_rows(rows)

    def batching(
        self, max_batch: int, on_step: Callable[[int, float], None] | None = None, kv_cache_gb: float | None = None
    ) -> SchedulerThread:
        """ONNX Runtime GenAI's ``Engine`` on this runner's model: its scheduler picks each step's
        sequences (gates/engines/ort_batching.py). ``max_batch`` cannot resize a CPU build's static
        scheduler (4 sequences, the engine's own constant); the scheduler reports what it runs. Its KV
        cache is sized per request (``set_max_session_tokens``), so ``kv_cache_gb`` has nothing to set."""
        sizes: list[int] = []

        def make() -> OrtStepEngine:  # on the scheduler's thread: the Engine checks its owner thread
            engine = OrtStepEngine(self.og, self.model, self.max_len)
            sizes.append(engine.configured_max_batch())
            return engine

        scheduler = SchedulerThread(make, self.stop_ids, max_batch, on_step, name="ort-genai-engine")
        scheduler.max_batch = sizes[0] if sizes else max_batch
        return scheduler
