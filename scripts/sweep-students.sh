#!/usr/bin/env bash
# The tuning sweep of the multilingual query student (docs/distillation.md, "Tuning on dev"):
# distils each configs/sweep/<name>.toml (the shipped multilingual-otc settings at a 200-step
# budget, one setting changed) into runs/sweep/<name>/, then scores it on dev only:
# AfriQA dev dense nDCG@10 (Yoruba on its train split, as everywhere) and SIB dev, the student
# un-interpolated as the query encoder against the e5 document indexes.
#
#   bash scripts/sweep-students.sh [NAME...]     # default: every config in configs/sweep/
#   python3 scripts/sweep_table.py eval-out/sweep  # the table
#
# Resumable like train-students.sh (a finished run is not redone; its evaluation is redone only
# until eval-out/sweep/<name>/scored exists). One thread per run unless
# RAYON_NUM_THREADS says otherwise; start one script per name in the background to run several.
# Needs the shared data (../shared/data) and the models from scripts/setup-models.sh; uses the
# document indexes under eval-out/indexes when scripts/eval-results.sh built them.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/optical/target}"
export RAYON_NUM_THREADS="${RAYON_NUM_THREADS:-1}"
CACHE="${OPTICAL_CACHE:-$HOME/.cache/optical}"
E5="$CACHE/models/multilingual-e5-small"
EVAL=../shared/data/eval
[ -d "$EVAL" ] || { echo "sweep-students: $EVAL not found (the sweep scores on the shared dev sets)" >&2; exit 1; }

if [ -z "${OPTICAL:-}" ]; then
  cargo build --release --bin optical
  OPTICAL="$CARGO_TARGET_DIR/release/optical"
fi

source scripts/distill-run.sh
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for c in configs/sweep/*.toml; do names+=("$(basename "$c" .toml)"); done
fi
for name in "${names[@]}"; do
  config="configs/sweep/$name.toml"
  [ -f "$config" ] || { echo "sweep-students: no config $config" >&2; exit 1; }
  run="runs/sweep/$name"
  distill_unless_finished sweep-students "$config" "$run"
  out="eval-out/sweep/$name"
  [ -f "$out/scored" ] && { echo "sweep-students: $name already scored ($out)" >&2; continue; }
  mkdir -p "$out"
  # The e5 document indexes do not depend on the query encoder: share them (hard links).
  [ -d "$out/indexes" ] || { [ -d eval-out/indexes ] && cp -al eval-out/indexes "$out/"; } || true
  common=(--doc-lang eng --doc-model "$E5" --modes dense --query-model "$run" --label "$name" --out "$out")
  "$OPTICAL" eval $(for l in bem hau ibo kin twi zul; do echo --collection $EVAL/afriqa-$l; done) --split dev "${common[@]}"
  "$OPTICAL" eval --collection $EVAL/afriqa-yor --split train "${common[@]}"
  "$OPTICAL" eval $(for l in amh deu fin fra hau ibo mar som swa tgl yor; do echo --collection $EVAL/sib-$l; done) \
    --split dev "${common[@]}"
  touch "$out/scored"
done
