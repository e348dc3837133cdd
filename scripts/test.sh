#!/usr/bin/env bash
# Runs every test of smtool on a fresh machine: sets up the reference Python TensorFlow
# (python/requirements*.txt, in .venv), then formatting, lints, the Rust test suite and the
# checks against TensorFlow itself; lints and tests run with the default features and again
# without them (no `serve`).
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/lib/venv.sh
ensure_venv

# Tests that need TensorFlow find it here; with SMTOOL_REQUIRE_TF=1 a missing one fails them.
export SMTOOL_TEST_PYTHON="$PWD/.venv/bin/python"
export SMTOOL_REQUIRE_TF=1
export TF_CPP_MIN_LOG_LEVEL=3

echo "==> cargo fmt --check"
cargo fmt --check
cargo fmt --check --manifest-path fuzz/Cargo.toml
echo "==> cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings
echo "==> cargo clippy --no-default-features"
cargo clippy --all-targets --no-default-features --quiet -- -D warnings
echo "==> cargo test"
cargo test --quiet 2>&1 | tee target/test-output.txt
# The build without `serve` (inspect, validate, add-classify, diff): its own test binaries,
# those of the serve feature being skipped by their required-features.
echo "==> cargo test --no-default-features"
cargo test --no-default-features --quiet 2>&1 | tee -a target/test-output.txt

# One closing line over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "summary: %d passed, %d failed\n", p, f }' target/test-output.txt
