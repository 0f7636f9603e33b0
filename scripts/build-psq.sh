#!/usr/bin/env bash
# Builds the translation tables (IBM Model 1, `optical psq build`) that ship with the
# multilingual student: one table per query language, from that language's *training* bitext
# (never a dev or evaluation file): the sentence bitext X.train.tsv.gz and, where it exists,
# the AfriQA training questions afriqa-X.train.tsv.
#
#   bash scripts/build-psq.sh [OUT_DIR]      # default: runs/psq
#
# Environment: BITEXT (default ../shared/data/bitext), OPTICAL (a built binary; default: build
# the release binary), LANGS (default: the languages below).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/optical/target}"
OUT="${1:-runs/psq}"
BITEXT="${BITEXT:-${OPTICAL_SHARED_DATA:-../shared/data}/bitext}"
LANGS="${LANGS:-amh bem deu fra hau ibo kin mar som swa tgl twi yor zul}"
if [ -z "${OPTICAL:-}" ]; then
  cargo build --release --bin optical
  OPTICAL="$CARGO_TARGET_DIR/release/optical"
fi
[ -d "$BITEXT" ] || { echo "build-psq: no bitext folder $BITEXT" >&2; exit 1; }
mkdir -p "$OUT"
for lang in $LANGS; do
  files=()
  for f in "$BITEXT/$lang.train.tsv.gz" "$BITEXT/afriqa-$lang.train.tsv"; do
    [ -f "$f" ] && files+=("$f")
  done
  if [ ${#files[@]} -eq 0 ]; then
    echo "build-psq: no training bitext for $lang in $BITEXT" >&2
    exit 1
  fi
  "$OPTICAL" psq build --bitext "${files[@]}" --lang "$lang" --out "$OUT/$lang.tsv"
done
