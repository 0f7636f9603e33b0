# Sourced by train-students.sh and sweep-students.sh: distils one config unless its run finished.
#   distill_unless_finished TAG CONFIG RUN_DIR [optical distill arguments...]
# A finished run (summary.json says so) is not redone; an interrupted one resumes from its last
# checkpoint (optical distill does that by itself). Needs $OPTICAL and $RAYON_NUM_THREADS.
distill_unless_finished() {
  local tag=$1 config=$2 run=$3
  shift 3
  if [ -f "$run/summary.json" ] && grep -q '"finished": true' "$run/summary.json"; then
    echo "$tag: $(basename "$run") already trained ($run); delete it to retrain" >&2
  else
    echo "$tag: distilling $(basename "$run") ($config, $RAYON_NUM_THREADS thread(s))" >&2
    "$OPTICAL" distill --config "$config" --quiet "$@"
  fi
}
