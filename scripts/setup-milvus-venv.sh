#!/usr/bin/env bash
# Virtual environment with pymilvus and milvus-lite (which serves Milvus's gRPC API on
# 127.0.0.1) for the Milvus export and its integration test (python/tests/test_milvus.py).
# Idempotent; prints the venv's python. scripts/test-python.sh installs the optical wheel into it.
set -euo pipefail
VENV="${OPTICAL_CACHE:-$HOME/.cache/optical}/milvus-venv"
PYTHON="${PYTHON:-python3}"
if "$VENV/bin/python" -c 'import pymilvus, milvus_lite' >/dev/null 2>&1; then
  echo "$VENV/bin/python"
  exit 0
fi
"$PYTHON" -m venv "$VENV" || { echo "setup-milvus-venv: error: cannot create a venv with $PYTHON (install python3-venv)" >&2; exit 1; }
"$VENV/bin/python" -m pip install --disable-pip-version-check -q "pymilvus[milvus-lite]" numpy pytest >&2 \
  || { echo "setup-milvus-venv: error: pip install pymilvus[milvus-lite] failed (is PyPI reachable?)" >&2; exit 1; }
echo "$VENV/bin/python"
