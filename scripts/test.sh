#!/usr/bin/env bash
# Runs every test of smtool on a fresh machine: sets up the reference Python TensorFlow
# (python/requirements.txt, in .venv), then formatting, lints, the Rust test suite and the
# checks against TensorFlow itself.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import tensorflow_serving' 2>/dev/null \
    || ! cmp -s python/requirements.txt .venv/requirements.installed; then
  echo "==> setting up .venv with python/requirements.txt (reference TensorFlow 2.21)"
  python3 -m venv .venv
  .venv/bin/pip install --quiet -r python/requirements.txt
  cp python/requirements.txt .venv/requirements.installed
fi

# Tests that need TensorFlow find it here; with SMTOOL_REQUIRE_TF=1 a missing one fails them.
export SMTOOL_TEST_PYTHON="$PWD/.venv/bin/python"
export SMTOOL_REQUIRE_TF=1
export TF_CPP_MIN_LOG_LEVEL=3

echo "==> cargo fmt --check"
cargo fmt --check
echo "==> cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings
echo "==> cargo test"
cargo test --quiet 2>&1 | tee target/test-output.txt

# One closing line over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "summary: %d passed, %d failed\n", p, f }' target/test-output.txt
