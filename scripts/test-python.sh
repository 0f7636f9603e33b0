#!/usr/bin/env bash
# The Python package's tests: builds the wheel (scripts/build-wheel.sh), installs it into a
# fresh venv (~/.cache/optical/py-test-venv, recreated each run; pip's cache keeps numpy and
# pytest local) and runs pytest on python/tests. Then, where their cached venvs exist
# (scripts/setup-milvus-venv.sh, scripts/setup-ray-venv.sh; .ci/run installs both), the wheel
# goes into each and the Milvus and Ray integration tests run there; without them those tests
# say SKIPPED. scripts/test.sh runs this after the Rust suite, whose dependencies the wheel's
# dev-profile build reuses and whose `optical` binary the tests compare with.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${OPTICAL_CACHE:-$HOME/.cache/optical}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"
PYTHON="${PYTHON:-python3}"
VENV="$CACHE/py-test-venv"

WHEEL="$(OPTICAL_WHEEL_PROFILE="${OPTICAL_WHEEL_PROFILE:-dev}" bash scripts/build-wheel.sh)"
export OPTICAL_BIN="$CARGO_TARGET_DIR/debug/optical"
[ -x "$OPTICAL_BIN" ] || cargo build --bin optical
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
# One sample index for the three pytest runs (built by the first).
export OPTICAL_TEST_SAMPLE_INDEX="$WORK/sample-index"

rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --disable-pip-version-check -q "$WHEEL" pytest
"$VENV/bin/python" -m pytest -v -rs python/tests "$@"

# Ray replaces a 127.0.0.1 node address by the machine's own address and its servers listen on
# every interface (docs/scaling.md). In a network namespace of its own, with only a loopback
# interface (`unshare -rn`: no privileges needed where user namespaces are allowed), the machine's
# address *is* 127.0.0.1 and nothing of the test cluster is reachable from outside. Where that
# is not possible the test runs as it is and says so.
loopback_only() {
  if unshare -rn sh -c 'ip link set lo up' 2>/dev/null; then
    OPTICAL_RAY_LOOPBACK=1 unshare -rn sh -c 'ip link set lo up && exec "$@"' sh "$@"
  else
    echo "NOTE: cannot make a network namespace here (unshare -rn); Ray's test cluster listens on every interface while it runs" >&2
    "$@"
  fi
}

for component in milvus ray; do
  venv="$CACHE/$component-venv"
  if [ -x "$venv/bin/python" ]; then
    "$venv/bin/python" -m pip install --disable-pip-version-check -q --force-reinstall --no-deps "$WHEEL"
    isolate=()
    [ "$component" = ray ] && isolate=(loopback_only)
    "${isolate[@]}" "$venv/bin/python" -m pytest -v -rs -s "python/tests/test_$component.py" "$@"
  else
    echo "SKIPPED: python/tests/test_$component.py: no $venv (bash scripts/setup-$component-venv.sh installs it)"
  fi
done
