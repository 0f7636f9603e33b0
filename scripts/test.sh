#!/usr/bin/env bash
# The test command of the README: prepares the real models (cached under ~/.cache/optical), then
# runs the whole test suite: the Rust crates, then the Python package (scripts/test-python.sh).
# Tests that need ../shared/data skip loudly when it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
# Reuse one target dir across clones and runs; a fresh machine builds it from nothing.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/optical/target}"
bash scripts/setup-models.sh
cargo test --workspace --exclude optical-python --all-targets
cargo test --workspace --exclude optical-python --doc
bash scripts/test-python.sh
