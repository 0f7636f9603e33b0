#!/usr/bin/env bash
# The main job on the embedded default: fetch and prepare the models (and assemble the shipped
# student), index the sample collection (examples/sample: English passages) with
# multilingual-e5-small, and run cross-lingual queries in Hausa, Yoruba, Igbo and Zulu against
# it. Queries are encoded by the shipped multilingual student, the default query encoder for an
# e5 index; the closing table puts zero-shot e5 and the student side by side.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/optical/target}"
CACHE="${OPTICAL_CACHE:-$HOME/.cache/optical}"
MODEL="$CACHE/models/multilingual-e5-small"
INDEX="${OPTICAL_DEMO_INDEX:-$CACHE/demo-index}"

bash scripts/setup-models.sh
cargo build --bin optical
OPTICAL="$CARGO_TARGET_DIR/debug/optical"

rm -rf "$INDEX"
# The passages are English (`--lang eng`: English stemmer for BM25); e5 encodes them with its
# `passage: ` prefix and the index records the encoder.
"$OPTICAL" index "$INDEX" --input examples/sample/corpus.jsonl --lang eng --model "$MODEL"
"$OPTICAL" info "$INDEX"

# Four questions of the sample, one per language, with AfriQA's human English translation.
while IFS='|' read -r lang query meaning; do
  echo
  echo "== [$lang] $query   ($meaning)"
  "$OPTICAL" search "$INDEX" "$query" -k 3 --mode hybrid --query-lang "$lang" --explain
done <<'QUERIES'
hau|A wace shekara aka kafa Kano pillars?|In what year was the Kano Pillars founded?
yor|olóṣèlú wo lo bori idibo aarẹ ni orilẹ-ede south africa laipẹ?|What is the name of the politician who recently won the president election in South Africa?
ibo|Kedụ aha onye isi ala na-achi Saut Afrika ugbu a?|What is the name of the current president of South Africa?
zul|Ubani umongameli wokuqala eNingizimu Afrika?|Who is the first president of South Africa?
QUERIES

echo
echo "== retrieval quality on the whole sample (100 questions, nDCG@10): zero-shot e5 vs the shipped student"
rm -rf "$CACHE/demo-eval"
"$OPTICAL" eval --collection examples/sample --split dev --modes bm25 --index "$INDEX" --out "$CACHE/demo-eval"
"$OPTICAL" eval --collection examples/sample --split dev --modes dense,hybrid \
  --query-model "$MODEL" --no-query-gloss --label "e5 zero-shot" --index "$INDEX" --out "$CACHE/demo-eval"
# No --query-model: the default, the shipped student.
"$OPTICAL" eval --collection examples/sample --split dev --modes dense,hybrid \
  --label "student" --index "$INDEX" --out "$CACHE/demo-eval" --markdown "$CACHE/demo-eval/results.md"
echo
sed -n '/^## nDCG@10/,/^## MRR/p' "$CACHE/demo-eval/results.md" | grep '^|'
