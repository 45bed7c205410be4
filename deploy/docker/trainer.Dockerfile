# syntax=docker/dockerfile:1.7
# The trainer image: SFT / DPO / SPA / W-DRO jobs (alignment.v1.Trainer), Python 3.11 + PyTorch.
# One image for CPU and GPU nodes: the pinned torch wheel from PyPI is the CUDA 13 build and brings its own CUDA
# runtime, cuDNN and NCCL as nvidia-* wheels, so no CUDA base image is needed; on a GPU node the NVIDIA container
# toolkit injects the driver (it must support CUDA 13). Build from the repository root (the build context is
# trimmed to what is copied below by trainer.Dockerfile.dockerignore):
#
#   docker build -f deploy/docker/trainer.Dockerfile -t alignment/trainer:0.1.0 .
#
# Stages: build (the pinned venv from services/trainer/requirements*.txt, wheels only, then the Python stubs from
# proto/) -> runtime (non-root; writes only to /tmp and the mounted /data). Base image and choices:
# deploy/docker/README.md.

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1
# The venv lives at the same path in both stages: venvs are not relocatable.
RUN python -m venv /opt/venv
COPY services/trainer/requirements.txt services/trainer/requirements-train.txt /tmp/requirements/
# Wheels only, as tools/python/venv.sh installs them: every pin has a manylinux wheel for CPython 3.11.
RUN --mount=type=cache,target=/root/.cache/pip \
    /opt/venv/bin/pip install --only-binary=:all: \
      -r /tmp/requirements/requirements.txt -r /tmp/requirements/requirements-train.txt \
 && /opt/venv/bin/pip check
WORKDIR /src
COPY proto proto
COPY services/trainer/scripts services/trainer/scripts
COPY services/trainer/src services/trainer/src
# Stubs with the venv's own grpcio-tools (what `nx run trainer:codegen` does); then the build- and test-only packages
# go, and the sources are byte-compiled (the runtime cannot write __pycache__ on a read-only root filesystem).
RUN bash services/trainer/scripts/codegen.sh /opt/venv/bin/python \
 && /opt/venv/bin/pip uninstall -y pytest grpcio-tools \
 && /opt/venv/bin/pip check \
 && /opt/venv/bin/python -m compileall -q --invalidation-mode unchecked-hash services/trainer/src

FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
COPY --from=build /src/services/trainer/src /app/src
# accelerate configs (ddp.yaml, fsdp.yaml) for multi-GPU LEARN Jobs: K8S_LEARN_ACCELERATE_CONFIG=/app/accelerate/fsdp.yaml
COPY services/trainer/accelerate /app/accelerate
WORKDIR /app
# Caches that torch, triton and Hugging Face write go to /tmp (an emptyDir in the pod); models load from local
# paths only (HF_HUB_OFFLINE), never from a hub.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app/src \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    XDG_CACHE_HOME=/tmp/.cache \
    HF_HOME=/tmp/huggingface \
    HF_HUB_OFFLINE=1 \
    TRITON_CACHE_DIR=/tmp/triton \
    TORCHINDUCTOR_CACHE_DIR=/tmp/torchinductor \
    PORT=50055 \
    DATA_DIR=/data/trainer
# Numeric, so Kubernetes can verify runAsNonRoot.
USER 10001:10001
EXPOSE 50055
# Python is PID 1 and handles SIGTERM itself (NOT_SERVING, checkpoint at the next step, drain, exit 0).
ENTRYPOINT ["python", "-m", "alignment_trainer.server"]
