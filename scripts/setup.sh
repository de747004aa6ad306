#!/usr/bin/env bash
# Creates .venv and installs logprompt with its training and dev extras (idempotent).
# Java 17+ and Maven are needed for the local Kafka broker; installed here when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v java >/dev/null 2>&1 || need_apt+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || need_apt+=(maven)
if ((${#need_apt[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${need_apt[*]} (needed by the local Kafka broker)"
    apt-get update -qq && apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "error: the local Kafka broker needs: ${need_apt[*]} (install them, or set KAFKA_BOOTSTRAP_SERVERS)" >&2
    exit 1
  fi
fi

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "error: Python 3.11+ is needed ($PYTHON is $("$PYTHON" --version 2>&1))" >&2
  exit 1
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# pip's cache (~/.cache/pip) serves torch and the CUDA wheels on later runs.
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[train,dev]'
# Tools of the k8s tests, cached in ~/.cache/logprompt-tools (pinned; idempotent).
bash k8s/tools/install-kustomize.sh >/dev/null
PYTHON=$PYTHON bash k8s/tools/install-checkov.sh >/dev/null
echo "setup done: $(.venv/bin/python -c 'import onnxruntime as o; print("onnxruntime", o.__version__, o.get_available_providers())')"
