# syntax=docker/dockerfile:1
# `logprompt stream` on NVIDIA GPUs: ONNX Runtime's CUDA provider needs the CUDA 12 runtime and
# cuDNN 9, which the nvidia/cuda "cudnn-runtime" image provides. Build from the repository root:
#   docker build -f docker/streamer-gpu.Dockerfile -t logprompt-streamer-gpu:0.1.0 .
# Only the streamer's runtime dependencies: `pip install .`, without the `train` extra (no torch).
# The base is pinned by tag; pin the digest at release with
#   --build-arg CUDA_IMAGE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04@sha256:<digest>
ARG CUDA_IMAGE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04

FROM ${CUDA_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 DEBIAN_FRONTEND=noninteractive
# Ubuntu 24.04's Python is 3.12 (the project needs >= 3.11). Versions come with the pinned base.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
RUN python3 -m venv /opt/venv
COPY pyproject.toml README.md ./
COPY logprompt/ logprompt/
COPY streamer/ streamer/
COPY export/ export/
COPY training/ training/
RUN /opt/venv/bin/pip install . \
    && /opt/venv/bin/python -c "import importlib.util as u, sys; sys.exit(u.find_spec('torch') is not None)"

FROM ${CUDA_IMAGE}
ENV DEBIAN_FRONTEND=noninteractive
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 logprompt \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin logprompt
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
COPY --from=build /opt/venv /opt/venv
USER 10001:10001
WORKDIR /tmp
# /healthz, /readyz, /metrics (LOGPROMPT_HTTP_PORT)
EXPOSE 8080
ENTRYPOINT ["logprompt"]
CMD ["stream"]
