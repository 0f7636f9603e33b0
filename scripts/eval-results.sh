#!/usr/bin/env bash
# Regenerates docs/results.md: every collection in the shared eval folder, every mode in $MODES.
#
#   bash scripts/eval-results.sh [EVAL_DIR]
#
# EVAL_DIR defaults to $OPTICAL_SHARED_DATA/eval or ../shared/data/eval. Environment:
#   MODES        comma-separated modes (default: bm25)
#   QUERY_MODEL  query encoder directory, passed as --query-model (dense and hybrid modes)
#   OUT          output folder for runs, per-query values and results.json (default: eval-out)
#   OPTICAL      the optical binary (default: built here, release)
# Indexes are cached in $OUT/indexes by corpus content, so the AfriQA and SIB sets, which share
# a corpus, are indexed once; rerunning with other modes adds rows to the same results.json.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/optical/target}"
EVAL_DIR="${1:-${OPTICAL_SHARED_DATA:-../shared/data}/eval}"
MODES="${MODES:-bm25}"
OUT="${OUT:-eval-out}"
if [ -z "${OPTICAL:-}" ]; then
  cargo build --release --bin optical
  OPTICAL="$CARGO_TARGET_DIR/release/optical"
fi
[ -d "$EVAL_DIR" ] || { echo "no eval collections at $EVAL_DIR" >&2; exit 1; }

model_args=()
if [ -n "${QUERY_MODEL:-}" ]; then model_args=(--query-model "$QUERY_MODEL"); fi

english=() # collections whose corpus is English
for dir in "$EVAL_DIR"/*/; do
  dir="${dir%/}"
  case "$(basename "$dir")" in
    masakhanews-*)
      # Monolingual news: the articles are in the collection's own language.
      lang="${dir##*-}"
      "$OPTICAL" eval --collection "$dir" --modes "$MODES" --doc-lang "$lang" "${model_args[@]}" --out "$OUT"
      ;;
    *) english+=("$dir") ;;
  esac
done
"$OPTICAL" eval --collection "${english[@]}" --modes "$MODES" "${model_args[@]}" --out "$OUT"

# Where a human English version of the queries exists, the same targets with English queries:
# the translate-test reference for the cross-lingual rows.
with_eng=()
for dir in "${english[@]}"; do
  if [ -f "$dir/queries.eng.jsonl" ]; then with_eng+=("$dir"); fi
done
if [ ${#with_eng[@]} -gt 0 ]; then
  "$OPTICAL" eval --collection "${with_eng[@]}" --queries queries.eng.jsonl --modes "$MODES" \
    "${model_args[@]}" --out "$OUT" --markdown docs/results.md
else
  "$OPTICAL" eval --collection "${english[0]}" --modes "$MODES" "${model_args[@]}" --out "$OUT" \
    --markdown docs/results.md
fi
echo "docs/results.md regenerated from $OUT/results.json"
