#!/usr/bin/env bash
# The fusion study of docs/search.md: one hybrid search per query on every dev collection (the
# legs: BM25 top-100 and the dense score of every candidate, written as TREC runs), then every
# fusion of FUSIONS scored from those legs without searching again (`optical eval --legs`).
#
#   bash scripts/fusion-sweep.sh [EVAL_DIR]
#   python3 scripts/fusion_table.py $OUT/results.json > table.md
#
# Dev splits only (AfriQA dev, Yoruba's train split; MasakhaNEWS, SIB dev; SciFact train): the
# default fusion is chosen on these. Environment: OUT (default eval-out/fusion; its indexes/
# folder may be a link to eval-out/indexes to reuse them), OPTICAL (default: the release binary,
# built), FUSIONS (comma-separated specs), E5, LABEL_ARGS (extra eval arguments, e.g.
# `--query-model DIR`).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/optical/target}"
EVAL_DIR="${1:-${OPTICAL_SHARED_DATA:-../shared/data}/eval}"
OUT="${OUT:-eval-out/fusion}"
FUSIONS="${FUSIONS:-rrf:10,rrf:20,rrf:60,linear:0.3,linear:0.5,linear:0.7,linear:0.8,zscore:0.3,zscore:0.5,zscore:0.6,zscore:0.7,zscore:0.8,zscore:0.9,confidence:0.5,confidence:0.7,confidence:0.8,bylang:0.7:0.5,bylang:0.75:0.5,bylang:0.8:0.5,bylang:0.8:0.4,bylang:0.9:0.5}"
if [ -z "${OPTICAL:-}" ]; then
  cargo build --release --bin optical
  OPTICAL="$CARGO_TARGET_DIR/release/optical"
fi
mkdir -p "$OUT"
# sets LANG SPLIT COLLECTION...: bm25 and dense rows, the legs, every fusion from the legs.
sets() {
  local lang=$1 split=$2; shift 2
  local c
  for c in "$@"; do
    local dir="$EVAL_DIR/$c" args=(--collection "$EVAL_DIR/$c" --split "$split" --doc-lang "$lang" --out "$OUT" --label default)
    "$OPTICAL" eval "${args[@]}" --modes bm25,dense
    "$OPTICAL" eval "${args[@]}" --modes hybrid
    local legs="$OUT/runs/$c.$split.legs__default_"
    "$OPTICAL" eval "${args[@]}" --legs "$legs.bm25.trec" "$legs.dense.trec" --fusion "$FUSIONS"
  done
}
sets eng dev afriqa-bem afriqa-hau afriqa-ibo afriqa-kin afriqa-twi afriqa-zul
sets eng train afriqa-yor
for l in amh hau ibo som swa yor; do sets "$l" dev "masakhanews-$l"; done
sets eng dev sib-amh sib-deu sib-fin sib-fra sib-hau sib-ibo sib-mar sib-som sib-swa sib-tgl sib-yor
sets eng train scifact
echo "fusion-sweep: $OUT/results.json; render with python3 scripts/fusion_table.py $OUT/results.json"
