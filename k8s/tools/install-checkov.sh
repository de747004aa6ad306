#!/usr/bin/env bash
# Installs a pinned checkov into its own virtual environment in a cache directory and prints
# the path of its executable. Idempotent.
# checkov gets its own venv because it pins packaging<24 and cachetools>=5, which clash with
# the project's own dependencies (drain3 pins cachetools==4.2.1).
#   CHECKOV_VERSION     pinned below
#   LOGPROMPT_TOOLS_DIR where tools are cached (default: ${XDG_CACHE_HOME:-~/.cache}/logprompt-tools)
#   PYTHON              the interpreter to build the venv from (default: python3)
set -euo pipefail

CHECKOV_VERSION="${CHECKOV_VERSION:-3.3.30}"
TOOLS_DIR="${LOGPROMPT_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/logprompt-tools}"
VENV="$TOOLS_DIR/checkov-$CHECKOV_VERSION"
BIN="$VENV/bin/checkov"

if [[ -x "$BIN" && -f "$VENV/.complete" ]]; then
  echo "$BIN"
  exit 0
fi

rm -rf "$VENV"
"${PYTHON:-python3}" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check "checkov==$CHECKOV_VERSION" >&2
"$BIN" --version >&2
touch "$VENV/.complete"
echo "$BIN"
