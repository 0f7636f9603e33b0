#!/usr/bin/env bash
# Long fuzz run of every reader of bytes from disk or from users: runs each fuzz target of
# storage/tests/storage_fuzz.rs and tests/fuzz_parsers.rs (the properties whose names start
# with `fuzz_<target>`) again and again, with many more cases than the test suite, for
# MINUTES_PER_TARGET minutes each (default 10). proptest draws a fresh random seed per run.
#
#   scripts/fuzz.sh [MINUTES_PER_TARGET] [TARGET ...]
#
# Environment: OPTICAL_FUZZ_CASES (cases per property per run, default 2000), FUZZ_OUT (where
# the summary and the logs of failed runs go, default $CARGO_TARGET_DIR/fuzz or target/fuzz),
# FUZZ_MEM_KB (address-space cap per run, default 8 GiB).
# The summary (summary.tsv) has one line per target: target, seconds, runs, properties, cases,
# failed runs. A failing property leaves its minimal input in the log and in
# proptest-regressions/ beside its test file; the script exits non-zero if any run failed.
set -euo pipefail
cd "$(dirname "$0")/.."

MINUTES="${1:-10}"
shift || true
PER_TARGET_S=$(awk -v m="$MINUTES" 'BEGIN { printf "%d", m * 60 }')
ALL_TARGETS=(segment tombstones commit_payload keymap corpus q4 trec beir bitext distill translation_table results query_text user_specs model)
TARGETS=("$@")
[[ ${#TARGETS[@]} -gt 0 ]] || TARGETS=("${ALL_TARGETS[@]}")
export OPTICAL_FUZZ_CASES="${OPTICAL_FUZZ_CASES:-2000}"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
OUT="${FUZZ_OUT:-$TARGET_DIR/fuzz}"
mkdir -p "$OUT"

# Build both test binaries once and find them.
binary() {
  cargo test --workspace --no-run --test "$1" 2>&1 | tee -a "$OUT/build.log" |
    sed -n "s|.*Executable tests/$1.rs (\(.*\))|\1|p" | tail -1
}
STORAGE_BIN="$(binary storage_fuzz)"
PARSERS_BIN="$(binary fuzz_parsers)"
[[ -x "$STORAGE_BIN" && -x "$PARSERS_BIN" ]] || { echo "could not build the fuzz tests (see $OUT/build.log)" >&2; exit 1; }
# Run copies: a rebuild during a long run must not swap the binaries under it.
mkdir -p "$OUT/bin"
cp "$STORAGE_BIN" "$OUT/bin/storage_fuzz" && STORAGE_BIN="$OUT/bin/storage_fuzz"
cp "$PARSERS_BIN" "$OUT/bin/fuzz_parsers" && PARSERS_BIN="$OUT/bin/fuzz_parsers"

# A memory cap per run (default 8 GiB of address space): an input that makes a reader allocate
# without bound then fails its run with an allocation error, instead of waking the OOM killer
# on a shared machine.
ulimit -v "${FUZZ_MEM_KB:-8388608}"

SUMMARY="$OUT/summary.tsv"
printf 'target\tseconds\truns\tproperties\tcases\tfailed_runs\n' >"$SUMMARY"
failed_total=0
for t in "${TARGETS[@]}"; do
  case "$t" in
    segment | tombstones) bin="$STORAGE_BIN" ;;
    *) bin="$PARSERS_BIN" ;;
  esac
  props=$("$bin" --list "fuzz_${t}" 2>/dev/null | grep -c ': test$' || true)
  if [[ "$props" -eq 0 ]]; then
    echo "unknown fuzz target $t (no property named fuzz_${t}…)" >&2
    exit 2
  fi
  start=$(date +%s)
  deadline=$((start + PER_TARGET_S))
  runs=0
  failed=0
  while [[ $(date +%s) -lt $deadline ]]; do
    log="$OUT/$t-run$runs.log"
    if "$bin" "fuzz_${t}" --test-threads=1 >"$log" 2>&1; then
      rm -f "$log"
    else
      failed=$((failed + 1))
      echo "$t: run $runs FAILED, see $log" >&2
    fi
    runs=$((runs + 1))
  done
  secs=$(($(date +%s) - start))
  cases=$((runs * props * OPTICAL_FUZZ_CASES))
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$secs" "$runs" "$props" "$cases" "$failed" >>"$SUMMARY"
  echo "$t: ${secs}s, $runs runs of $props properties × $OPTICAL_FUZZ_CASES cases = $cases cases, $failed failed runs"
  failed_total=$((failed_total + failed))
done
column -t "$SUMMARY" 2>/dev/null || cat "$SUMMARY"
[[ $failed_total -eq 0 ]]
