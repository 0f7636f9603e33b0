#!/usr/bin/env bash
# Virtual environment with torch + transformers for the PyTorch reference of
# benches/encoder_speed.rs (scripts/bench_pytorch_encoder.py). Only the benchmark needs it.
# Idempotent. Prints the python to use (also found automatically by the bench).
#
# PyPI's Linux torch wheel is the CUDA build (several GB with its nvidia-* dependencies); the
# benchmark runs it on CPU only. Where the PyTorch CPU index is reachable, setting
# PIP_EXTRA_INDEX_URL to it before running this script gets the much smaller +cpu wheel.
set -euo pipefail
exec bash "$(dirname "$0")/setup-venv.sh" bench 'import torch, transformers' torch transformers
