#!/usr/bin/env bash
# Virtual environment with Ray Data (about 600 MB) for the distributed indexing job
# (examples/ray_index.py) and its two-node integration test (python/tests/test_ray.py).
# Idempotent; prints the venv's python. scripts/test-python.sh installs the optical wheel into it.
set -euo pipefail
VENV="${OPTICAL_CACHE:-$HOME/.cache/optical}/ray-venv"
PYTHON="${PYTHON:-python3}"
if "$VENV/bin/python" -c 'import ray.data, pytest' >/dev/null 2>&1; then
  echo "$VENV/bin/python"
  exit 0
fi
"$PYTHON" -m venv "$VENV" || { echo "setup-ray-venv: error: cannot create a venv with $PYTHON (install python3-venv)" >&2; exit 1; }
"$VENV/bin/python" -m pip install --disable-pip-version-check -q "ray[data]" numpy pytest >&2 \
  || { echo "setup-ray-venv: error: pip install ray[data] failed (is PyPI reachable?)" >&2; exit 1; }
echo "$VENV/bin/python"
