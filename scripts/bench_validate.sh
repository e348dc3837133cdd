#!/usr/bin/env bash
# Benchmark of `smtool validate`: a tree of N SavedModel versions (hard-linked copies of every
# fixture model, healthy and broken, 10 versions per model base path) validated in one run, with
# `saved_model_cli scan` on one model as the comparison, side by side in the same run.
# Also one model with SIGS extra predict signatures (two nodes each, python/make_many_signatures.py)
# beside file ops reached from its serving signature: validate must stay near-linear in
# signatures and nodes. Prints a Markdown table (median wall time of several runs, peak RSS).
#
# Usage: scripts/bench_validate.sh [N] [SIGS]     (default N=1000, SIGS=50000)
# Needs: cargo, hyperfine and GNU time (installed with apt-get when missing), and the reference
# Python TensorFlow in .venv for saved_model_cli (set up like scripts/test.sh does, or point
# SAVED_MODEL_CLI at one).
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-1000}"
SIGS="${2:-50000}"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v hyperfine >/dev/null || [ ! -x /usr/bin/time ]; then
  echo "==> installing hyperfine and time" >&2
  as_root apt-get update -qq >&2
  as_root apt-get install -y -qq hyperfine time >&2
fi
SAVED_MODEL_CLI="${SAVED_MODEL_CLI:-.venv/bin/saved_model_cli}"
if [ ! -x "$SAVED_MODEL_CLI" ]; then
  source scripts/lib/venv.sh
  ensure_venv
  SAVED_MODEL_CLI=.venv/bin/saved_model_cli
fi

echo "==> cargo build --release" >&2
cargo build --release --quiet
BIN="${CARGO_TARGET_DIR:-target}/release/smtool"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
TREE="$WORK/models"
FIXTURES=(digits/model iris_tf1 vocab_assets half_plus_two/1 half_plus_two/2 half_plus_two_pbtxt
  broken/classify_float_input broken/missing_tensor broken/regress_two_outputs broken/truncated
  broken/no_saved_model broken/file_ops)
echo "==> building a tree of $N SavedModel versions in $WORK" >&2
for ((i = 0; i < N; i++)); do
  src="fixtures/${FIXTURES[i % ${#FIXTURES[@]}]}"
  dst="$TREE/model$((i / 10))/$((i % 10 + 1))"
  mkdir -p "$(dirname "$dst")"
  cp -al "$src" "$dst"
done
ONE=fixtures/digits/model
MANY="$WORK/many_signatures"
echo "==> writing a model with $SIGS extra signatures" >&2
TF_CPP_MIN_LOG_LEVEL=3 .venv/bin/python python/make_many_signatures.py fixtures/broken/file_ops "$MANY" "$SIGS" >&2

# Validate exits 1 (the tree holds broken models): hyperfine must not stop on that.
hyperfine --style none --warmup 2 --runs 10 -i --export-json "$WORK/tree.json" \
  "$BIN validate --format json $TREE" >&2
hyperfine --style none --warmup 2 --runs 20 -i --export-json "$WORK/one.json" \
  "$BIN validate --format json $ONE" >&2
hyperfine --style none --warmup 1 --runs 5 -i --export-json "$WORK/many.json" \
  "$BIN validate --format json $MANY" >&2
echo "==> saved_model_cli scan (loads TensorFlow; a few seconds per run)" >&2
hyperfine --style none --warmup 1 --runs 3 -i --export-json "$WORK/scan.json" \
  "TF_CPP_MIN_LOG_LEVEL=3 $SAVED_MODEL_CLI scan --dir $ONE" >&2

median() { python3 -c 'import json,sys; print("%.3f" % json.load(open(sys.argv[1]))["results"][0]["median"])' "$1"; }
# Peak resident set size (MiB) and CPU time (user + system, s) of one run, as table cells.
usage() {
  /usr/bin/time -f '%M %U %S' -o "$WORK/time.txt" "$@" >/dev/null 2>&1 || true
  tail -n 1 "$WORK/time.txt" | awk '{printf "%.1f | %.2f", $1 / 1024, $2 + $3}'
}
MODELS=$("$BIN" validate --format json "$TREE" | python3 -c 'import json,sys; print(json.load(sys.stdin)["summary"]["models"])' || true)

echo
echo "| command | models | median wall time (s) | peak RSS (MiB) | CPU time (s) |"
echo "|---|---:|---:|---:|---:|"
echo "| \`smtool validate\` (tree of $N versions) | $MODELS | $(median "$WORK/tree.json") | $(usage "$BIN" validate --format json "$TREE") |"
echo "| \`smtool validate\` (one model, $ONE) | 1 | $(median "$WORK/one.json") | $(usage "$BIN" validate --format json "$ONE") |"
echo "| \`smtool validate\` (one model, $SIGS extra signatures) | 1 | $(median "$WORK/many.json") | $(usage "$BIN" validate --format json "$MANY") |"
echo "| \`saved_model_cli scan --dir\` (one model, $ONE) | 1 | $(median "$WORK/scan.json") | $(usage env TF_CPP_MIN_LOG_LEVEL=3 "$SAVED_MODEL_CLI" scan --dir "$ONE") |"
echo
echo "$(nproc) CPUs, load average $(cut -d" " -f1-3 /proc/loadavg); $(uname -sr); smtool $("$BIN" --version | awk '{print $2}'); hyperfine $(hyperfine --version | awk '{print $2}')"
