#!/usr/bin/env bash
# Benchmark of `smtool run` against `saved_model_cli run`: the same model, the same input, the
# whole process (start, loading TensorFlow and the model, one request, printing the outputs),
# side by side in the same run. Cases: one digit image from a .npy file, a batch of 64 digit
# images from a .npz file, and one iris tf.Example through the classify signature. Prints a
# Markdown table (median wall time of several runs, peak RSS, CPU time).
#
# Usage: scripts/bench_run.sh [RUNS]     (default RUNS=10 for smtool, half as many for
#        saved_model_cli, which takes several seconds a run)
# Needs: cargo, hyperfine and GNU time (installed with apt-get when missing), and the reference
# Python TensorFlow in .venv (set up like scripts/test.sh does): saved_model_cli is its
# .venv/bin/saved_model_cli, and smtool loads the same wheel's libtensorflow (--tensorflow-dir).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-10}"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v hyperfine >/dev/null || [ ! -x /usr/bin/time ]; then
  echo "==> installing hyperfine and time" >&2
  as_root apt-get update -qq >&2
  as_root apt-get install -y -qq hyperfine time >&2
fi
if [ ! -x .venv/bin/saved_model_cli ]; then
  source scripts/lib/venv.sh
  ensure_venv
fi
PY=.venv/bin/python
SAVED_MODEL_CLI=.venv/bin/saved_model_cli
TF_DIR="$($PY -c 'import importlib.util as u; print(u.find_spec("tensorflow").submodule_search_locations[0])')"

echo "==> cargo build --release" >&2
cargo build --release --quiet
BIN="${CARGO_TARGET_DIR:-target}/release/smtool"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
echo "==> writing the inputs with NumPy in $WORK" >&2
$PY - "$WORK" <<'EOF'
import sys
import numpy as np
from PIL import Image

out = sys.argv[1]
pixels = np.asarray(Image.open("fixtures/digits/images/00_five.png")).astype(np.float32) / 255.0
np.save(f"{out}/one.npy", pixels[None, :, :, None])
np.savez(f"{out}/batch.npz", x=np.repeat(pixels[None, :, :, None], 64, axis=0))
EOF
# Quoted for the shell that hyperfine (and bash -c below) run each command with.
EXAMPLE="'inputs=[{\"x\":[5.1,3.5,1.4,0.2]}]'"
# saved_model_cli's TensorFlow logs as smtool's does without -v: not at all.
export TF_CPP_MIN_LOG_LEVEL=3
DIGITS=fixtures/digits/model
IRIS=fixtures/iris_tf1

# name | smtool command | saved_model_cli command
CASES=(
  "digits, 1 image (.npy)|$BIN run $DIGITS --tensorflow-dir $TF_DIR --input x=$WORK/one.npy|$SAVED_MODEL_CLI run --dir $DIGITS --tag_set serve --signature_def serving_default --inputs x=$WORK/one.npy"
  "digits, 64 images (.npz)|$BIN run $DIGITS --tensorflow-dir $TF_DIR --input x=$WORK/batch.npz[x]|$SAVED_MODEL_CLI run --dir $DIGITS --tag_set serve --signature_def serving_default --inputs x=$WORK/batch.npz[x]"
  "iris classify, 1 tf.Example|$BIN run $IRIS --tensorflow-dir $TF_DIR --signature classify --examples $EXAMPLE|$SAVED_MODEL_CLI run --dir $IRIS --tag_set serve --signature_def classify --input_examples $EXAMPLE"
)

median() { $PY -c 'import json,sys; print("%.3f" % json.load(open(sys.argv[1]))["results"][0]["median"])' "$1"; }
# Peak resident set size (MiB) and CPU time (user + system, s) of one run, as table cells.
usage() {
  /usr/bin/time -f '%M %U %S' -o "$WORK/time.txt" "$@" >/dev/null 2>&1 || true
  tail -n 1 "$WORK/time.txt" | awk '{printf "%.1f | %.2f", $1 / 1024, $2 + $3}'
}

ROWS=()
for i in "${!CASES[@]}"; do
  IFS='|' read -r name smtool cli <<<"${CASES[$i]}"
  echo "==> $name" >&2
  # Both must succeed on the case before they are timed.
  bash -c "$smtool" >/dev/null
  bash -c "$cli" >/dev/null 2>&1
  hyperfine --style none --warmup 1 --runs "$RUNS" --export-json "$WORK/s$i.json" "$smtool" >&2
  hyperfine --style none --warmup 1 --runs "$(( (RUNS + 1) / 2 ))" --export-json "$WORK/c$i.json" \
    "$cli" >&2
  s=$(median "$WORK/s$i.json")
  c=$(median "$WORK/c$i.json")
  ROWS+=("| $name | \`smtool run\` | $s | $(usage bash -c "$smtool") | $(awk -v a="$c" -v b="$s" 'BEGIN{printf "%.1fx", a / b}') |")
  ROWS+=("| $name | \`saved_model_cli run\` | $c | $(usage bash -c "$cli") | 1x |")
done

echo
echo "| case | command | median wall time (s) | peak RSS (MiB) | CPU time (s) | speed-up |"
echo "|---|---|---:|---:|---:|---:|"
printf '%s\n' "${ROWS[@]}"
echo
echo "$(nproc) CPUs, load average $(cut -d" " -f1-3 /proc/loadavg); $(uname -sr); smtool $("$BIN" --version | awk '{print $2}'); TensorFlow $($PY -c 'import importlib.metadata as m; print(m.version("tensorflow-cpu"))'); hyperfine $(hyperfine --version | awk '{print $2}')"
