#!/usr/bin/env bash
# Regenerates docs/results.md: BM25 (raw and with the shipped translation tables, PSQ),
# zero-shot multilingual-e5-small (q4), the distilled multilingual students (the shipped default,
# and the OT run at equal budget) and hybrid retrieval with each, on every collection of the
# shared eval folder.
#
#   bash scripts/eval-results.sh [EVAL_DIR]
#
# EVAL_DIR defaults to $OPTICAL_SHARED_DATA/eval or ../shared/data/eval. Environment:
#   E5           document encoder and zero-shot query encoder (default: multilingual-e5-small in
#                $OPTICAL_CACHE/models or ~/.cache/optical/models)
#   STUDENT      the shipped default student, assembled (default: $OPTICAL_CACHE/models/students/multilingual)
#   OT_STUDENT   the OT student trained at the same budget (default: runs/students/multilingual-ot)
#   MSE_STUDENT  the mse student trained at the same budget (default: runs/students/multilingual-mse)
#   OUT          output folder for runs, per-query values, indexes, results.json (default: eval-out)
#   OPTICAL      the optical binary (default: built here, release)
#   ONLY         space-separated collection-name prefixes to run (default: all, in the order below)
#   STUDENTS_ONLY=1  rerun only the student rows (after retraining a student); the bm25 and
#                e5 zero-shot rows already in $OUT/results.json are kept as they are
#
# Rows, per collection (labels as they appear in the table):
#   bm25                              tantivy BM25 on the query text
#   bm25 (psq)                        BM25 on the query translated by the student's table (PSQ;
#                                     collections of English documents only)
#   dense / hybrid (e5 zero-shot)     e5 encodes queries (`query: `, as written) and documents (`passage: `)
#   dense (student)                   the shipped multilingual student encodes the queries (glossed
#                                     where the query language has a table, as every row below)
#   dense (student ot)                the raw-cost OT student (same data, same budget) encodes the queries
#   dense (student mse)               the mse student (same data, same budget) encodes the queries
#   dense / hybrid (default)          no --query-model: what `optical eval` and `optical search`
#                                     use by default (the installed students: Hausa queries go to the
#                                     Hausa student, others to the multilingual one; English routed
#                                     by their manifests)
#   dense / hybrid (default, no gloss)  the default with queries encoded as written (--no-query-gloss)
#   hybrid (default, no tables)       the default without translation tables (--psq none): BM25 on
#                                     the untranslated query, no gloss
#   afriqa-*, xquad-r-deu also with queries.eng.jsonl (human English translations): bm25 and
#   dense (e5 zero-shot) there are the translate-test reference (the teacher on English).
# Hybrid is BM25 top-100 ∪ dense top-100 with the default fusion (bylang: z-scores, dense weight
# 0.8 for cross-lingual queries, 0.5 for queries in the documents' language; docs/search.md) and,
# for a query language with a table, the translated BM25 leg.
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
STUDENT="${STUDENT:-$CACHE/models/students/multilingual}"
OT_STUDENT="${OT_STUDENT:-runs/students/multilingual-ot}"
MSE_STUDENT="${MSE_STUDENT:-runs/students/multilingual-mse}"
OUT="${OUT:-eval-out}"
if [ -z "${OPTICAL:-}" ]; then
  cargo build --release --bin optical
  OPTICAL="$CARGO_TARGET_DIR/release/optical"
fi
[ -d "$EVAL_DIR" ] || { echo "no eval collections at $EVAL_DIR" >&2; exit 1; }
[ -f "$E5/model.safetensors" ] || { echo "no e5 model at $E5 (run scripts/setup-models.sh)" >&2; exit 1; }

students=()
for s in "student|$STUDENT" "student ot|$OT_STUDENT" "student mse|$MSE_STUDENT"; do
  if [ -f "${s#*|}/model.safetensors" ]; then
    students+=("$s")
  else
    echo "eval-results: no model.safetensors in ${s#*|}: rows 'dense (${s%%|*})' are skipped" >&2
  fi
done
# The comparison students' rows are described only when they are run (each line ends in a newline:
# an empty line would end the markdown table).
ot_row="" mse_row=""
[ -f "$OT_STUDENT/model.safetensors" ] && ot_row="| \`dense (student ot)\` | the student distilled with token-level OT on raw cosine costs, same data, same budget, not interpolated ($(basename "$OT_STUDENT")) |"$'\n'
[ -f "$MSE_STUDENT/model.safetensors" ] && mse_row="| \`dense (student mse)\` | the student distilled with sentence-level MSE, same data, same budget, not interpolated ($(basename "$MSE_STUDENT"); the shipped student before the centred-cost OT one) |"$'\n'

mkdir -p "$OUT"
cat > "$OUT/preamble.md" <<EOF
What the rows are (documents are always encoded by multilingual-e5-small (q4) with its
\`passage: \` prefix; only the query encoder changes):

| mode | queries encoded by |
|---|---|
| \`bm25\` | — (tantivy BM25 on the query text) |
| \`dense (e5 zero-shot)\` | multilingual-e5-small (q4), \`query: \` prefix, no training, the query as written |
| \`bm25 (psq)\` | BM25 on the query translated by the IBM Model 1 table shipped with the student (cross-lingual collections) |
| \`hybrid (e5 zero-shot)\` | BM25 top-100 ∪ dense top-100 with that query encoder, the default fusion (bylang: z-scores, dense weight 0.8 cross-lingual / 0.5 monolingual) and the translated BM25 leg (translations searched in passage bodies) where the query language has a table (likewise every hybrid row) |
| \`dense (student)\` | the shipped multilingual student (token-level OT with a centred cost, weights interpolated 0.7 toward e5; $(basename "$STUDENT")); a query of up to 12 words in a language with a table is encoded with its gloss appended (the English words of its words' best translations; docs/search.md, "Query glosses"), as in every row below |
${ot_row}${mse_row}| \`dense (default)\`, \`hybrid (default)\` | no \`--query-model\`: the default query path (the installed students: the Hausa student for Hausa queries, the multilingual one for the other languages; English routed as their manifests say) |
| \`dense (default, no gloss)\`, \`hybrid (default, no gloss)\` | the default path with queries encoded as written (\`--no-query-gloss\`) |
| \`hybrid (default, no tables)\` | the default path without translation tables (\`--psq none\`): the BM25 leg on the untranslated query, no gloss |

The students were trained on the bitext of swa, hau, yor, ibo, amh, som, mar, tgl and the AfriQA
*train* questions of bem, hau, ibo, kin, swa, twi, zul (never on an evaluation collection);
rows in deu, fra and fin measure transfer.
Rows with queries \`queries.eng.jsonl\` use the human English translations of the same
questions: \`dense (e5 zero-shot)\` there is the teacher on English, the translate-test reference
for the cross-lingual rows. Regenerate with \`bash scripts/eval-results.sh\`. † marks compare
rows of one \`optical eval\` call; the un-interpolated student against zero-shot was tested in
docs/students.md (\`optical eval --run\` on the two TREC runs: p < 0.05 on every AfriQA language).
A row \`<mode>+maxsim:30:0.4\` is that dense or hybrid row with the late-interaction rerank
\`optical search\` runs by default on an index with token codes (cross-lingual queries only;
docs/search.md, "Stored token codes"): \`optical eval --rerank auto\` adds it.
Where the query's language has a table, the stage also reads the query's English rendering
(its MaxSim mixed in at 0.3; docs/search.md, "A second reading of the query") — in every such
row, the e5 zero-shot and no-gloss ones included.
EOF


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
    "$OPTICAL" eval "${common[@]}" --modes bm25 --psq none
    if [ "$lang" = eng ] && [ "${TEACHER_ONLY:-0}" != 1 ] && [ -d "$STUDENT/psq" ]; then
      "$OPTICAL" eval "${common[@]}" --modes bm25 --psq "$STUDENT/psq" --label psq
    fi
    # The zero-shot reference reads the queries as written (no gloss).
    "$OPTICAL" eval "${common[@]}" --modes dense,hybrid --query-model "$E5" --no-query-gloss --label "e5 zero-shot"
  fi
  [ "${TEACHER_ONLY:-0}" = 1 ] && return 0
  local s
  for s in "${students[@]}"; do
    "$OPTICAL" eval "${common[@]}" --modes dense --query-model "${s#*|}" --label "${s%%|*}"
  done
  if [ ${#students[@]} -gt 0 ]; then
    "$OPTICAL" eval "${common[@]}" --modes dense,hybrid --label "default"
    if [ "$lang" = eng ]; then
      "$OPTICAL" eval "${common[@]}" --modes dense,hybrid --no-query-gloss --label "default, no gloss"
      "$OPTICAL" eval "${common[@]}" --modes hybrid --psq none --label "default, no tables"
    fi
  fi
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
