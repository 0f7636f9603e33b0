#!/usr/bin/env bash
# Rebuilds every shipped student from scratch: distils it (resumable), then packages it into
# students/<name>/ (fp16 weights of the trained tensors + manifest) with `optical model export-delta`.
#
#   bash scripts/train-students.sh [NAME...]        # default: every config in configs/students/
#
# Each config configs/students/<name>.toml trains one student into runs/students/<name>/.
# Runs take hours on 2 CPU cores: they run one after the other, one thread each unless
# RAYON_NUM_THREADS says otherwise, and rerunning the script resumes an interrupted run from its
# last checkpoint (a finished run is not redone; delete runs/students/<name> to retrain). To
# run several at once, start one script per name in the background, e.g.
#   nohup bash scripts/train-students.sh multilingual-mse > runs/multilingual-mse.log 2>&1 &
#
# Environment:
#   DEVICE     cpu (default) or cuda / cuda:N: the same run on a GPU (build with --features cuda,
#              docs/distillation.md, "Devices", has the offline LLVM recipe; FEATURES=cuda does that)
#   FEATURES   cargo features for the build (default: none)
#   SHIP       space-separated names to package into students/ (default: multilingual-otc-1500,
#              the shipped default, and hau-mse, the Hausa student; the others are trained for
#              comparison only). How each is shipped (directory, α, languages, tables) is in
#              ship_settings.
#   OPTICAL    an optical binary to use instead of building one
#   ENGLISH_TO_TEACHER  1 (default): the manifest routes English queries to e5, as the shipped
#              student's does (English gains nothing from it: docs/students.md); 0: to the student
#   LANGUAGES, INTERPOLATE  override ship_settings' languages and α (base + α · (trained − base))
# The translation tables of the BM25 leg (PSQ) are rebuilt from the training bitext by
# scripts/build-psq.sh into runs/psq and shipped beside the weights.
# Before packaging, `bash scripts/eval-results.sh` and
#   python3 scripts/student_metrics.py eval-out/results.json "student mse" > runs/students/<name>.eval.json
# record the evaluation the student is chosen on in its manifest.
# Needs the shared bitext (../shared/data/bitext, as the configs name it) and the models from
# scripts/setup-models.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/optical/target}"
export RAYON_NUM_THREADS="${RAYON_NUM_THREADS:-1}"
CACHE="${OPTICAL_CACHE:-$HOME/.cache/optical}"
E5="$CACHE/models/multilingual-e5-small"
DEVICE="${DEVICE:-cpu}"
SHIP="${SHIP:-multilingual-otc-1500 hau-mse}"

if [ -z "${OPTICAL:-}" ]; then
  cargo build --release --bin optical ${FEATURES:+--features "$FEATURES"}
  OPTICAL="$CARGO_TARGET_DIR/release/optical"
fi
OPTICAL="$OPTICAL" bash scripts/setup-models.sh

# How a shipped student is packaged: "directory α languages tables|-" (students/<directory>). α
# was chosen on dev (docs/students.md): 0.7 for the multilingual student (AfriQA and SIB dev),
# 1 for the Hausa one (afriqa-hau and sib-hau dev). The multilingual student is the OT run with
# the centred cost, which beat the mse run on AfriQA dev (docs/distillation.md), trained 1,500
# steps at the sweep's learning rate (multilingual-otc-1500; the 800-step multilingual-otc
# shipped before it).
# The translation tables of every language ship once, with the multilingual student; the search
# finds a language's table in whichever student holds it.
ship_settings() {
  case "$1" in
    multilingual-otc|multilingual-otc-1500) echo "multilingual 0.7 swa,hau,yor,ibo,amh,som,mar,tgl,bem,kin,twi,zul tables" ;;
    hau-mse) echo "hau 1 hau -" ;;
    *) echo "train-students: no ship settings for $1 (add it to ship_settings)" >&2; return 1 ;;
  esac
}

source scripts/distill-run.sh
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for c in configs/students/*.toml; do names+=("$(basename "$c" .toml)"); done
fi
for name in "${names[@]}"; do
  config="configs/students/$name.toml"
  [ -f "$config" ] || { echo "train-students: no config $config" >&2; exit 1; }
  out="runs/students/$name"
  distill_unless_finished train-students "$config" "$out" --device "$DEVICE"
  case " $SHIP " in
    *" $name "*)
      read -r ship_name alpha languages tables < <(ship_settings "$name")
      [ -n "${alpha:-}" ] || exit 1
      metrics=() english=() psq=()
      [ "${ENGLISH_TO_TEACHER:-1}" = 1 ] && english=(--english-to-teacher)
      [ -f "runs/students/$name.eval.json" ] && metrics=(--metrics "runs/students/$name.eval.json")
      if [ "$tables" = tables ]; then
        OPTICAL="$OPTICAL" bash scripts/build-psq.sh runs/psq
        psq=(--psq runs/psq)
      fi
      "$OPTICAL" model export-delta "$out" --base "$E5" --out "students/$ship_name" \
        --name "optical-student-$ship_name" --languages "${LANGUAGES:-$languages}" \
        --interpolate "${INTERPOLATE:-$alpha}" "${psq[@]}" "${english[@]}" "${metrics[@]}"
      ;;
  esac
done
