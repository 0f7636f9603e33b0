#!/usr/bin/env bash
# Regenerates docs/results.md: BM25, zero-shot multilingual-e5-small (q4), the OT- and
# MSE-distilled students and hybrid retrieval, on every collection of the shared eval folder.
#
#   bash scripts/eval-results.sh [EVAL_DIR]
#
# EVAL_DIR defaults to $OPTICAL_SHARED_DATA/eval or ../shared/data/eval. Environment:
#   E5           document encoder and zero-shot query encoder (default: multilingual-e5-small in
#                $OPTICAL_CACHE/models or ~/.cache/optical/models)
#   OT_STUDENT   query encoder distilled with the OT loss (default: runs/distill-swa-ot, from configs/distill-swa.toml)
#   MSE_STUDENT  query encoder distilled with the MSE baseline (default: runs/distill-swa-mse, from configs/distill-swa-mse.toml)
#   OUT          output folder for runs, per-query values, indexes, results.json (default: eval-out)
#   OPTICAL      the optical binary (default: built here, release)
#   ONLY         space-separated collection-name prefixes to run (default: all, in the order below)
#   STUDENTS_ONLY=1  rerun only the student rows (after retraining a student); the bm25 and
#                e5 zero-shot rows already in $OUT/results.json are kept as they are
#
# Rows, per collection (labels as they appear in the table):
#   bm25                          tantivy BM25 on the query text
#   dense (e5 zero-shot)          e5 encodes queries (`query: `) and documents (`passage: `)
#   dense (mse student swa)       the MSE student encodes the queries, e5 the documents
#   dense (ot student swa)        the OT student encodes the queries, e5 the documents
#   hybrid (ot student swa)       BM25 ∪ dense (OT student), reciprocal rank fusion (k = 60)
#   afriqa-*, xquad-r-deu also with queries.eng.jsonl (human English translations): bm25 and
#   dense (e5 zero-shot) there are the translate-test reference (the teacher on English).
# The students were distilled on Swahili bitext only; on other languages they show transfer.
#
# Documents are always encoded by e5, so one dense index per corpus (cached in $OUT/indexes by
# corpus content + e5's weights fingerprint) serves every row; the AfriQA and SIB sets share a
# corpus and so an index. docs/results.md is rewritten after every step, so an interrupted run
# leaves the rows finished so far. A student directory without model.safetensors is skipped
# (its rows are missing; the script says so).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/optical/target}"
EVAL_DIR="${1:-${OPTICAL_SHARED_DATA:-../shared/data}/eval}"
CACHE="${OPTICAL_CACHE:-$HOME/.cache/optical}"
E5="${E5:-$CACHE/models/multilingual-e5-small}"
OT_STUDENT="${OT_STUDENT:-runs/distill-swa-ot}"
MSE_STUDENT="${MSE_STUDENT:-runs/distill-swa-mse}"
OUT="${OUT:-eval-out}"
if [ -z "${OPTICAL:-}" ]; then
  cargo build --release --bin optical
  OPTICAL="$CARGO_TARGET_DIR/release/optical"
fi
[ -d "$EVAL_DIR" ] || { echo "no eval collections at $EVAL_DIR" >&2; exit 1; }
[ -f "$E5/model.safetensors" ] || { echo "no e5 model at $E5 (run scripts/setup-models.sh)" >&2; exit 1; }

mkdir -p "$OUT"
cat > "$OUT/preamble.md" <<EOF
What the rows are (documents are always encoded by multilingual-e5-small (q4) with its
\`passage: \` prefix; only the query encoder changes):

| mode | queries encoded by |
|---|---|
| \`bm25\` | — (tantivy BM25 on the query text) |
| \`dense (e5 zero-shot)\` | multilingual-e5-small (q4), \`query: \` prefix, no training |
| \`dense (ot student swa)\` | the student distilled from e5 with the OT loss on **Swahili** bitext ($(basename "$OT_STUDENT")) |
| \`dense (mse student swa)\` | the student distilled with the sentence-level MSE baseline on the same bitext ($(basename "$MSE_STUDENT")) |
| \`hybrid (ot student swa)\` | BM25 top-100 ∪ dense top-100 (OT student), reciprocal rank fusion k = 60 |

The students were trained on Swahili only: on every other language their rows measure transfer.
Rows with queries \`queries.eng.jsonl\` use the human English translations of the same
questions: \`dense (e5 zero-shot)\` there is the teacher on English, the translate-test reference
for the cross-lingual rows. Regenerate with \`bash scripts/eval-results.sh\`.
EOF

students=()
for s in "ot student swa|$OT_STUDENT" "mse student swa|$MSE_STUDENT"; do
  if [ -f "${s#*|}/model.safetensors" ]; then
    students+=("$s")
  else
    echo "eval-results: no model.safetensors in ${s#*|}: rows 'dense (${s%%|*})' are skipped" >&2
  fi
done

# rows DOC_LANG COLLECTION... [-- EXTRA ARGS]: every row for these collections.
# With TEACHER_ONLY=1: only bm25 and dense (e5 zero-shot) (the English-query reference rows).
rows() {
  local lang="$1"; shift
  local cols=() extra=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do cols+=(--collection "$1"); shift; done
  [ $# -gt 0 ] && shift
  extra=("$@")
  local common=("${cols[@]}" --doc-lang "$lang" --doc-model "$E5" --out "$OUT" --markdown docs/results.md --preamble "$OUT/preamble.md" "${extra[@]}")
  if [ "${STUDENTS_ONLY:-0}" != 1 ]; then
    "$OPTICAL" eval "${common[@]}" --modes bm25
    "$OPTICAL" eval "${common[@]}" --modes dense --query-model "$E5" --label "e5 zero-shot"
  fi
  [ "${TEACHER_ONLY:-0}" = 1 ] && return 0
  local s
  for s in "${students[@]}"; do
    local label="${s%%|*}" dir="${s#*|}" modes=dense
    case "$label" in ot*) modes=dense,hybrid ;; esac
    "$OPTICAL" eval "${common[@]}" --modes "$modes" --query-model "$dir" --label "$label"
  done
}

wanted() { # is collection $1 selected by $ONLY?
  [ -z "${ONLY:-}" ] && return 0
  local p; for p in $ONLY; do case "$1" in "$p"*) return 0 ;; esac; done; return 1
}

collections() { # directories of the collections named $1*, selected by $ONLY
  local d; for d in "$EVAL_DIR"/"$1"*/; do
    d="${d%/}"; [ -d "$d" ] && wanted "$(basename "$d")" && echo "$d"
  done
}

# Cross-lingual QA on an English pool first (the project's main case), then the others.
mapfile -t afriqa < <(collections afriqa-)
if [ ${#afriqa[@]} -gt 0 ]; then
  rows eng "${afriqa[@]}"
  TEACHER_ONLY=1 rows eng "${afriqa[@]}" -- --queries queries.eng.jsonl
fi
# Monolingual news: the articles are in the collection's own language.
for dir in $(collections masakhanews-); do rows "${dir##*-}" "$dir"; done
mapfile -t xquad < <(collections xquad-r-)
if [ ${#xquad[@]} -gt 0 ]; then
  rows eng "${xquad[@]}"
  for dir in "${xquad[@]}"; do
    if [ -f "$dir/queries.eng.jsonl" ]; then TEACHER_ONLY=1 rows eng "$dir" -- --queries queries.eng.jsonl; fi
  done
fi
mapfile -t tatoeba < <(collections tatoeba-)
[ ${#tatoeba[@]} -gt 0 ] && rows eng "${tatoeba[@]}"
mapfile -t sib < <(collections sib-)
[ ${#sib[@]} -gt 0 ] && rows eng "${sib[@]}"
mapfile -t scifact < <(collections scifact)
[ ${#scifact[@]} -gt 0 ] && rows eng "${scifact[@]}"
echo "docs/results.md regenerated from $OUT/results.json"
