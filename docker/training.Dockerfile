# syntax=docker/dockerfile:1
# `logprompt train` and `export-onnx` (k8s/jobs/train-job.yaml). Build from the repository root:
#   docker build -f docker/training.Dockerfile -t logprompt-training:0.1.0 .
# Installs `.[train]`. PyTorch's Linux x86_64 wheels bring their own CUDA libraries, so a plain
# Python base runs on GPU nodes (the NVIDIA container toolkit mounts the driver).
# The base is pinned by tag; pin the digest at release with
#   --build-arg PYTHON_IMAGE=python:3.11.11-slim-bookworm@sha256:<digest>
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
COPY pyproject.toml README.md ./
COPY logprompt/ logprompt/
COPY streamer/ streamer/
COPY export/ export/
COPY training/ training/
RUN /opt/venv/bin/pip install ".[train]"

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
RUN groupadd --gid 10001 logprompt \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /scratch --shell /usr/sbin/nologin logprompt
COPY --from=build /opt/venv /opt/venv
USER 10001:10001
WORKDIR /scratch
ENTRYPOINT []
CMD ["logprompt", "--help"]
