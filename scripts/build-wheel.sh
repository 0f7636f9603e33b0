#!/usr/bin/env bash
# Builds the Python package `optical` (python/: PyO3 bindings + the Python module) into one abi3
# wheel (CPython 3.8 and later) with maturin, and prints the wheel's path on stdout.
#
#   bash scripts/build-wheel.sh                 # release build → ~/.cache/optical/wheels/optical/
#   OPTICAL_WHEEL_PROFILE=dev bash scripts/build-wheel.sh   # what scripts/test.sh does: reuses the
#                                               # dependencies the Rust tests built (dev profile:
#                                               # dependencies at opt-level 3, Optical at 1)
#
# maturin comes from PyPI into a cached venv (~/.cache/optical/maturin-venv). Builds go to
# CARGO_TARGET_DIR (default ~/.cache/optical/target, shared with scripts/test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${OPTICAL_CACHE:-$HOME/.cache/optical}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"
PROFILE="${OPTICAL_WHEEL_PROFILE:-release}"
OUT="${OPTICAL_WHEEL_DIR:-$CACHE/wheels/optical}"
VENV="$CACHE/maturin-venv"
MATURIN_VERSION=1.16.0
PYTHON="${PYTHON:-python3}"

if [ "$("$VENV/bin/maturin" --version 2>/dev/null)" != "maturin $MATURIN_VERSION" ]; then
  "$PYTHON" -m venv "$VENV" || { echo "build-wheel: error: cannot create a venv with $PYTHON (install python3-venv)" >&2; exit 1; }
  "$VENV/bin/python" -m pip install --disable-pip-version-check -q "maturin==$MATURIN_VERSION" >&2 \
    || { echo "build-wheel: error: pip install maturin==$MATURIN_VERSION failed (is PyPI reachable?)" >&2; exit 1; }
fi
mkdir -p "$OUT"
rm -f "$OUT"/optical-*.whl
# --compatibility linux: the wheel is for this machine's glibc (no auditwheel repair); a wheel
# for PyPI would be built in a manylinux container instead.
"$VENV/bin/maturin" build --manifest-path python/Cargo.toml --profile "$PROFILE" \
  --interpreter "$PYTHON" --compatibility linux --out "$OUT" >&2
ls "$OUT"/optical-*.whl
