#!/usr/bin/env bash
# The GPU check of issue 14: parity of the encoder on the GPU with the CPU backend (golden
# sentences), multilingual-e5-small passages/s at batch 256 x 128, and one OT-distillation step at
# batch 32 x 32 and a larger batch, each beside the CPU figure of the same run. The figures go to
# $OUT/gpu-check.md (the device tool's output folder; ./gpu-check-out without it).
#
# The GPU machine (docs/backends.md) has the NVIDIA driver and a CUDA toolkit but no Rust
# toolchain, no crate registry and no network, so the check is built here and carried there:
#
#   bash scripts/gpu-check.sh pack     # here: build examples/gpu_check.rs with --features cuda,
#                                      # strip it, pack it with the models' config and tokenizer
#                                      # files into .gpu-check/, split into parts that fit a call
#   bash scripts/gpu-check.sh run      # there: reassemble the parts, check them, run the check
#
# A device call carries at most 64 MiB including the checkout itself, so `pack` splits the
# archive into as many parts as needed and prints the calls to make: one per part, on the same
# warm machine (carried ignored paths stay there between calls while the machine is held).
# Model weights do not fit: `run` checks random weights of the real configurations (see
# examples/gpu_check.rs), or the real ones where models/*/model.safetensors are present there.
set -euo pipefail
cd "$(dirname "$0")/.."
PACK_DIR=.gpu-check
ARCHIVE=gpu-check.tar.xz
MODELS=(all-minilm-l6-v2 multilingual-e5-small)
CALL_LIMIT=$((64 * 1024 * 1024))

die() { echo "gpu-check: error: $*" >&2; exit 1; }

pack() {
  command -v xz >/dev/null || die "xz is needed to pack"
  local cache="${OPTICAL_CACHE:-$HOME/.cache/optical}"
  local target="${CARGO_TARGET_DIR:-target}"
  bash scripts/setup-cuda.sh
  cargo build --release --features cuda --example gpu_check
  rm -rf "$PACK_DIR"
  local stage="$PACK_DIR/stage"
  mkdir -p "$stage/models"
  cp "$target/release/examples/gpu_check" "$stage/gpu_check"
  strip "$stage/gpu_check"
  for m in "${MODELS[@]}"; do
    local src="$cache/models/$m"
    [ -f "$src/config.json" ] || die "$src is not prepared: run scripts/setup-models.sh"
    mkdir -p "$stage/models/$m"
    cp "$src/config.json" "$src/tokenizer.json" "$src/optical.json" "$stage/models/$m/"
  done
  tar -C "$stage" -cf - . | xz -9 -T0 >"$PACK_DIR/$ARCHIVE"
  rm -rf "$stage"
  # What travels anyway: the tracked files and the untracked ones git does not ignore.
  local tree
  tree=$( { git ls-files -z; git ls-files -z --others --exclude-standard; } \
    | xargs -0 -r stat -c %s -- 2>/dev/null | awk '{s += $1} END {print s + 0}')
  local room=$((CALL_LIMIT - tree - 1024 * 1024))
  [ "$room" -ge $((1024 * 1024)) ] || die "the checkout alone ($tree bytes) leaves no room under the 64 MiB a call carries"
  (cd "$PACK_DIR" && split -b "$room" -d -a 2 "$ARCHIVE" part- && sha256sum "$ARCHIVE" >manifest && ls part-* >>manifest && rm "$ARCHIVE")
  git check-ignore -q "$PACK_DIR/manifest" || die "$PACK_DIR is not ignored by git (.gitignore): it must travel as a carried path"
  local parts
  parts=$(cd "$PACK_DIR" && ls part-*)
  echo "gpu-check: packed $(du -ch "$PACK_DIR"/part-* | tail -1 | cut -f1) in $(echo "$parts" | wc -l) part(s) of at most $((room / 1024 / 1024)) MiB (checkout: $((tree / 1024 / 1024)) MiB)."
  echo "gpu-check: device calls, one after the other on the same warm machine:"
  local last
  last=$(echo "$parts" | tail -1)
  for p in $parts; do
    if [ "$p" = "$last" ]; then
      echo "  run(command='bash scripts/gpu-check.sh run', carry=['$PACK_DIR/manifest', '$PACK_DIR/$p'], timeout_s=540)"
    else
      echo "  run(command='bash scripts/gpu-check.sh receive', carry=['$PACK_DIR/manifest', '$PACK_DIR/$p'], timeout_s=60)"
    fi
  done
}

# Lists the parts still missing on this machine (none: the archive can be reassembled).
missing_parts() {
  [ -f "$PACK_DIR/manifest" ] || { echo "manifest"; return; }
  tail -n +2 "$PACK_DIR/manifest" | while read -r p; do [ -f "$PACK_DIR/$p" ] || echo "$p"; done
}

receive() {
  local missing
  missing=$(missing_parts)
  echo "gpu-check: parts here: $(find "$PACK_DIR" -maxdepth 1 -name 'part-*' -printf '%f ' 2>/dev/null | sort)"
  [ -z "$missing" ] || echo "gpu-check: still to carry: $(echo "$missing" | tr '\n' ' ')"
}

run_check() {
  local out="${OUT:-gpu-check-out}"
  mkdir -p "$out"
  local missing
  missing=$(missing_parts)
  [ -z "$missing" ] || die "missing $(echo "$missing" | tr '\n' ' ')in $PACK_DIR: carry every part (scripts/gpu-check.sh pack lists the calls) on one warm machine"
  local work=/tmp/optical-gpu-check
  rm -rf "$work" && mkdir -p "$work"
  tail -n +2 "$PACK_DIR/manifest" | while read -r p; do cat "$PACK_DIR/$p"; done >"$work/$ARCHIVE"
  (cd "$work" && sed -n 1p "$OLDPWD/$PACK_DIR/manifest" | sha256sum -c --quiet -) || die "the reassembled archive does not match the manifest: pack and carry again"
  python3 -c "import lzma, sys; sys.stdout.buffer.write(lzma.open(sys.argv[1]).read())" "$work/$ARCHIVE" | tar -C "$work" -xf -
  # Real weights, where someone put them there, replace the random ones.
  for m in "${MODELS[@]}"; do
    [ -f "models/$m/model.safetensors" ] && cp "models/$m/model.safetensors" "$work/models/$m/"
  done
  # The CUDA toolkit: libdevice for cubecl's LLVM path, headers and libnvrtc for cuda-nvrtc.
  if [ -z "${CUDA_PATH:-}" ]; then
    if [ -d /usr/local/cuda ]; then export CUDA_PATH=/usr/local/cuda
    elif command -v nvcc >/dev/null; then CUDA_PATH=$(dirname "$(dirname "$(command -v nvcc)")"); export CUDA_PATH
    fi
  fi
  {
    echo "# $(date -u +%FT%TZ) on $(hostname), $(nproc) cores; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | sed 's/^/# GPU: /'
    echo "# CUDA_PATH=${CUDA_PATH:-unset}; libdevice: $(ls "${CUDA_PATH:-/nonexistent}"/nvvm/libdevice/libdevice.10.bc 2>/dev/null || echo missing)"
  } >"$out/gpu-check-env.txt"
  cat "$out/gpu-check-env.txt"
  local rc=0
  OPTICAL_GOLDEN_DIR="$PWD/tests/fixtures/golden" \
    "$work/gpu_check" --models "$work/models" --out "$out/gpu-check.md" 2>&1 | tee "$out/gpu-check.log" || rc=${PIPESTATUS[0]}
  [ -f "$out/gpu-check.md" ] && cat "$out/gpu-check-env.txt" "$out/gpu-check.md" >"$out/gpu-check.md.tmp" && mv "$out/gpu-check.md.tmp" "$out/gpu-check.md"
  case $rc in
    0) echo "gpu-check: done: $out/gpu-check.md" ;;
    2) die "parity failed on the GPU: see $out/gpu-check.md" ;;
    *) die "gpu_check failed (exit $rc): see $out/gpu-check.log" ;;
  esac
}

case "${1:-}" in
  pack) pack ;;
  receive) receive ;;
  run) run_check ;;
  *) echo "usage: bash scripts/gpu-check.sh pack|receive|run (see the comment at the top)" >&2; exit 2 ;;
esac
