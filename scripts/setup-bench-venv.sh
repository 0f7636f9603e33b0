#!/usr/bin/env bash
# Virtual environment with torch + transformers for the PyTorch reference of
# benches/encoder_speed.rs (scripts/bench_pytorch_encoder.py). Only the benchmark needs it.
# Idempotent. Prints the python to use (also found automatically by the bench).
#
# PyPI's Linux torch wheel is the CUDA build (several GB with its nvidia-* dependencies); the
# benchmark runs it on CPU only. Where the PyTorch CPU index is reachable, setting
# PIP_EXTRA_INDEX_URL to it before running this script gets the much smaller +cpu wheel.
set -euo pipefail
VENV="${OPTICAL_CACHE:-$HOME/.cache/optical}/bench-venv"
PYTHON="${PYTHON:-python3}"
if "$VENV/bin/python" -c 'import torch, transformers' >/dev/null 2>&1; then
  echo "$VENV/bin/python"
  exit 0
fi
"$PYTHON" -m venv "$VENV" || { echo "setup-bench-venv: error: cannot create a venv with $PYTHON (install python3-venv)" >&2; exit 1; }
"$VENV/bin/python" -m pip install --disable-pip-version-check -q torch transformers >&2 \
  || { echo "setup-bench-venv: error: pip install torch transformers failed (is the package index reachable?)" >&2; exit 1; }
echo "$VENV/bin/python"
