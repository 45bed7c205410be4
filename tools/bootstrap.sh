#!/usr/bin/env bash
# Installs what the workspace needs on a machine that has only Node 20, Python 3.11 and Go: npm packages,
# grpcurl, and the trainer's Python virtualenv (kept outside the clone, keyed by its pinned requirements).
# Idempotent and quick when everything is already there. Prints nothing on stdout but the venv path line
# `VENV=<path>` at the end (progress goes to stderr).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

lock_hash=$(sha256sum package-lock.json | cut -c1-16)
if [ ! -f node_modules/.alignment-lock-hash ] || [ "$(cat node_modules/.alignment-lock-hash)" != "$lock_hash" ]; then
  echo "bootstrap: npm ci" >&2
  # onnxruntime-node's install step downloads CUDA provider files and fails offline; the bundled CPU build is used.
  ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund >&2
  echo "$lock_hash" > node_modules/.alignment-lock-hash
fi

gobin=$(go env GOPATH 2>/dev/null || echo "$HOME/go")/bin
if ! command -v grpcurl >/dev/null 2>&1 && [ ! -x "$gobin/grpcurl" ]; then
  echo "bootstrap: go install grpcurl" >&2
  go install github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.3 >&2
fi

venv=$(bash tools/python/venv.sh)
echo "VENV=$venv"
