"""``gates formats``: our quantization format names and what Model Optimizer runs for each."""

from __future__ import annotations

import click

from gates.optimize.quantize import FORMATS, cuda_available

# Which engine runs a format's numerics on real low-precision kernels (else: Model Optimizer's simulation).
REAL_HERE = {
    "int8": "engine.backend torch-int8 (torch._int_mm, W8A8)",
    "int8_sq": "engine.backend torch-int8 (torch._int_mm, W8A8)",
    "int8_wo": "engine.backend onnxruntime-genai with precision int8 (its own quantization, not this artifact)",
    "int4_wo": "engine.backend onnxruntime-genai with precision int4 (its own quantization, not this artifact)",
}
REAL_GPU = {name: "engine.backend tensorrt-llm" for name in FORMATS if name != "none"}


@click.command("formats")
def command() -> None:
    """List quantization formats, their Model Optimizer config and what they need."""
    cuda = cuda_available()
    device = "GPU" if cuda else "CPU"
    click.echo(f"{'format':10} {'modelopt config':22} {'here (' + device + ')':26} note")
    for name, info in FORMATS.items():
        if name == "none":
            here = "baseline as candidate"
        elif info.needs_cuda and not cuda:
            here = "refused: needs CUDA"
        else:
            # Model Optimizer inserts fake-quant nodes; real low-precision kernels come from an
            # engine build (TensorRT-LLM on GPU runners)
            here = f"simulated on {device}"
        click.echo(f"{name:10} {info.modelopt_cfg or '-':22} {here:26} {info.note}")
        click.echo(
            f"{'':10} real kernels here: {REAL_HERE.get(name, 'none')}; on a GPU runner: {REAL_GPU.get(name, '-')}"
        )
    click.echo("kv_cache: fp8 adds FP8_KV_CFG (KV-cache quantizers) to any format")
    click.echo(
        "engine.backend onnxruntime-genai builds both arms itself (fp32 baseline, engine.precision int8|int4 "
        "candidate, MatMulNBits): real CPU kernels without a Model Optimizer format"
    )
