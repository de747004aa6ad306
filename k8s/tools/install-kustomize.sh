#!/usr/bin/env bash
# Installs a pinned kustomize into a cache directory and prints the binary's path.
# Idempotent: a second run finds the binary and only prints its path.
#   KUSTOMIZE_VERSION   pinned below; CI may override it on purpose, never by accident
#   LOGPROMPT_TOOLS_DIR where tools are cached (default: ${XDG_CACHE_HOME:-~/.cache}/logprompt-tools)
# Source: `go install` from the Go module proxy (checked against sum.golang.org) when Go is
# present, else the GitHub release tarball checked against the release's checksums.txt.
set -euo pipefail

KUSTOMIZE_VERSION="${KUSTOMIZE_VERSION:-v5.8.1}"
TOOLS_DIR="${LOGPROMPT_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/logprompt-tools}"
DEST="$TOOLS_DIR/kustomize-$KUSTOMIZE_VERSION"
BIN="$DEST/kustomize"

if [[ -x "$BIN" ]] && "$BIN" version 2>/dev/null | grep -q "$KUSTOMIZE_VERSION"; then
  echo "$BIN"
  exit 0
fi

mkdir -p "$DEST"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

if command -v go >/dev/null 2>&1; then
  # GOBIN is a temporary folder: nothing lands in ~/go/bin. The go.sum database checks the code.
  GOBIN="$tmp/bin" CGO_ENABLED=0 \
    go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION" >&2
  mv "$tmp/bin/kustomize" "$BIN.partial"
else
  os="$(uname -s | tr '[:upper:]' '[:lower:]')"
  case "$(uname -m)" in
    x86_64) arch=amd64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) echo "install-kustomize: unsupported architecture $(uname -m)" >&2; exit 1 ;;
  esac
  base="https://github.com/kubernetes-sigs/kustomize/releases/download/kustomize%2F$KUSTOMIZE_VERSION"
  tarball="kustomize_${KUSTOMIZE_VERSION}_${os}_${arch}.tar.gz"
  curl -fsSL -o "$tmp/$tarball" "$base/$tarball"
  curl -fsSL -o "$tmp/checksums.txt" "$base/checksums.txt"
  (cd "$tmp" && grep " $tarball\$" checksums.txt | sha256sum -c - >&2)
  tar -xzf "$tmp/$tarball" -C "$tmp" kustomize
  mv "$tmp/kustomize" "$BIN.partial"
fi

chmod 0755 "$BIN.partial"
mv "$BIN.partial" "$BIN"  # atomic: a concurrent run never sees half a binary
"$BIN" version >&2
echo "$BIN"
