#!/usr/bin/env bash
# The test command of the README: prepares the real models (cached under ~/.cache/optical), then
# runs the whole test suite: the Rust crates, then the Python package (scripts/test-python.sh).
# Tests that need ../shared/data skip loudly when it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
# Reuse one target dir across clones and runs; a fresh machine builds it from nothing.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/optical/target}"
# Build the tests first, and prepare the models with the `optical` binary that build makes: a
# plain `cargo build --bin optical` resolves the dependencies' features without those the
# dev-dependencies add, so the test build compiled burn and the crates below it a second time (a
# cold run on 2 cores: ≈ 27 min in setup-models' build, then 12.5 min building the tests).
cargo test --workspace --exclude optical-python --all-targets --no-run
OPTICAL="${OPTICAL:-$CARGO_TARGET_DIR/debug/optical}" bash scripts/setup-models.sh
cargo test --workspace --exclude optical-python --all-targets
cargo test --workspace --exclude optical-python --doc
bash scripts/test-python.sh
