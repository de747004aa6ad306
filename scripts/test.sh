#!/usr/bin/env bash
# Lint, type-check and run every test. Integration tests start the project's own Kafka broker
# (or use KAFKA_BOOTSTRAP_SERVERS); tests that need ../shared/datasets skip without it.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check .
.venv/bin/mypy logprompt training export streamer
set +e
.venv/bin/python -m pytest -q -rs "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "error: pytest collected no tests" >&2
  exit 1
fi
exit "$status"
