#!/usr/bin/env bash
# A cached virtual environment: ~/.cache/optical/NAME-venv (OPTICAL_CACHE overrides the folder)
# with PACKAGES installed from the package index. Idempotent: an existing venv where CHECK (a
# Python statement) runs is kept. Prints the venv's python on stdout.
#
#   bash scripts/setup-venv.sh NAME CHECK PACKAGE...
#
# The scripts setup-{bench,milvus,ray}-venv.sh name what each venv holds.
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: setup-venv.sh NAME CHECK PACKAGE..." >&2; exit 2; }
NAME="$1" CHECK="$2"
shift 2
VENV="${OPTICAL_CACHE:-$HOME/.cache/optical}/$NAME-venv"
PYTHON="${PYTHON:-python3}"
if "$VENV/bin/python" -c "$CHECK" >/dev/null 2>&1; then
  echo "$VENV/bin/python"
  exit 0
fi
"$PYTHON" -m venv "$VENV" || { echo "setup-$NAME-venv: error: cannot create a venv with $PYTHON (install python3-venv)" >&2; exit 1; }
"$VENV/bin/python" -m pip install --disable-pip-version-check -q "$@" >&2 \
  || { echo "setup-$NAME-venv: error: pip install $* failed (is the package index reachable?)" >&2; exit 1; }
echo "$VENV/bin/python"
