# syntax=docker/dockerfile:1
# `logprompt stream` on CPU. Build from the repository root:
#   docker build -f docker/streamer-cpu.Dockerfile -t logprompt-streamer-cpu:0.1.0 .
# Only the streamer's runtime dependencies: `pip install .`, without the `train` extra (no torch).
# The base is pinned by tag; pin the digest at release with
#   --build-arg PYTHON_IMAGE=python:3.11.11-slim-bookworm@sha256:<digest>
# (`docker buildx imagetools inspect python:3.11.11-slim-bookworm` prints it).
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
RUN /opt/venv/bin/pip install . \
    && /opt/venv/bin/python -c "import importlib.util as u, sys; sys.exit(u.find_spec('torch') is not None)"

FROM ${PYTHON_IMAGE}
# Python writes no .pyc at run time: the root filesystem is read-only in the pod.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN groupadd --gid 10001 logprompt \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin logprompt
COPY --from=build /opt/venv /opt/venv
USER 10001:10001
WORKDIR /tmp
# /healthz, /readyz, /metrics (LOGPROMPT_HTTP_PORT)
EXPOSE 8080
ENTRYPOINT ["logprompt"]
CMD ["stream"]
