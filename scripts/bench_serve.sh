#!/usr/bin/env bash
# Benchmarks `smtool serve` side by side with the alternatives, in one run on one machine:
#   1. the in-process limit (benches/serve_inprocess.rs: session run, core, core + JSON);
#   2. `smtool serve` :predict (digits image classifier, one 28x28 image) and :classify (iris,
#      one tf.Example) at concurrency 1 and 16 with `wrk`;
#   3. the same models behind Python's threaded HTTP server with tf.saved_model.load
#      (python/bench_python_server.py), same load.
# Prints Markdown tables (throughput, p50, p99, server RSS).
#
# Needs: wrk (installed with apt-get when missing) and the reference Python (.venv, as
# scripts/test.sh sets up, or SMTOOL_TEST_PYTHON). BENCH_SECONDS sets the length of each load
# run (default 10).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${SMTOOL_TEST_PYTHON:-$PWD/.venv/bin/python}
SECONDS_PER_RUN=${BENCH_SECONDS:-10}
SMTOOL_PORT=${BENCH_SMTOOL_PORT:-18601}
PYTHON_PORT=${BENCH_PYTHON_PORT:-18602}
export TF_CPP_MIN_LOG_LEVEL=3

source scripts/lib/wrk.sh
ensure_wrk
[ -x "$PY" ] || { echo "bench_serve.sh needs the reference Python: run scripts/test.sh first" >&2; exit 2; }

work=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "==> building (release)" >&2
cargo build --release --quiet

write_bench_bodies "$PY" "$work"

echo "==> in-process limit" >&2
SMTOOL_TEST_PYTHON="$PY" cargo bench --quiet --bench serve_inprocess 2>/dev/null > "$work/inprocess.md"

wait_ready() { # url
  for _ in $(seq 1 600); do
    if curl -s -o /dev/null -X POST -d @"$work/classify.json" "$1"; then return 0; fi
    sleep 0.1
  done
  echo "server did not come up" >&2; exit 1
}

rss_mib() { # pid -> "current / peak"
  awk '/VmRSS/ {r=$2} /VmHWM/ {h=$2} END {printf "%.0f / %.0f", r/1024, h/1024}' "/proc/$1/status"
}

rows=()
load() { # label port pid
  local label=$1 port=$2 pid=$3
  for endpoint in predict classify; do
    local model=digits; [ "$endpoint" = classify ] && model=iris
    for c in 1 16; do
      local rps p50 p99 bad
      read -r rps p50 p99 bad < <(wrk_run "http://127.0.0.1:$port/v1/models/$model:$endpoint" \
        "$work/$endpoint.json" "$c" "$SECONDS_PER_RUN")
      rows+=("| $label | :$endpoint | $c | $rps | $p50 | $p99 | $(rss_mib "$pid") | $bad |")
    done
  done
}

echo "==> smtool serve" >&2
VIRTUAL_ENV="$(dirname "$(dirname "$PY")")" target/release/smtool serve \
  --model digits=fixtures/digits/model --model iris=fixtures/iris_tf1 \
  --rest-api-port "$SMTOOL_PORT" --file_system_poll_wait_seconds 0 --no-fetch 2> "$work/smtool.log" &
server_pid=$!
wait_ready "http://127.0.0.1:$SMTOOL_PORT/v1/models/iris:classify"
load "smtool serve" "$SMTOOL_PORT" "$server_pid"
kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""

echo "==> Python http.server + tf.saved_model.load" >&2
"$PY" python/bench_python_server.py "$PYTHON_PORT" fixtures/digits/model fixtures/iris_tf1 > "$work/python.log" 2>&1 &
server_pid=$!
wait_ready "http://127.0.0.1:$PYTHON_PORT/v1/models/iris:classify"
load "Python server" "$PYTHON_PORT" "$server_pid"
kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""

echo
echo "In-process limit ($(nproc) cores, $(date -u +%Y-%m-%d)):"
echo
cat "$work/inprocess.md"
echo
echo "Over HTTP, ${SECONDS_PER_RUN}s per row with wrk:"
echo
echo "| server | endpoint | concurrency | req/s | p50 ms | p99 ms | RSS MiB (now / peak) | non-2xx / errors |"
echo "|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
