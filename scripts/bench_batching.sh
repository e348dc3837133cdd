#!/usr/bin/env bash
# Throughput of `smtool serve` :predict on the fixture image classifier (fixtures/digits/model)
# at concurrency 16 and 64, without and with server-side batching, in the same run on the same
# machine, plus the in-process ceiling: one image per session run against 64 per run.
# Load generator: `wrk` (Debian package `wrk`; installed with apt-get when missing).
#
# Usage: scripts/bench_batching.sh   (BENCH_SECONDS sets the length of each run, default 10)
# Needs libtensorflow the way `smtool serve` finds it (e.g. a Python venv with tensorflow-cpu
# active, TENSORFLOW_DIR, or --tensorflow-dir in SMTOOL_SERVE_ARGS).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${BENCH_SECONDS:-10}"
export TF_CPP_MIN_LOG_LEVEL=3
if [ -z "${VIRTUAL_ENV:-}" ] && [ -x .venv/bin/python ]; then
  export VIRTUAL_ENV="$PWD/.venv"
fi

source scripts/lib/wrk.sh
ensure_wrk

echo "==> building smtool (release)"
cargo build --release --quiet
smtool="${CARGO_TARGET_DIR:-target}/release/smtool"

work="$(mktemp -d)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# One 28x28x1 image in the row format.
python3 - "$work/body.json" <<'PY'
import json, sys
image = [[[((x * 7 + y * 13) % 256) / 255.0] for x in range(28)] for y in range(28)]
json.dump({"instances": [image]}, open(sys.argv[1], "w"))
PY

cat > "$work/batching.config" <<'CFG'
max_batch_size { value: 64 }
batch_timeout_micros { value: 2000 }
max_enqueued_batches { value: 1000 }
num_batch_threads { value: 2 }
CFG

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_server() {
  local rest grpc
  rest="$(free_port)"; grpc="$(free_port)"
  # shellcheck disable=SC2086
  "$smtool" serve fixtures/digits/model --model-name digits --rest-api-port "$rest" --port "$grpc" \
      --file_system_poll_wait_seconds=0 ${SMTOOL_SERVE_ARGS:-} "$@" 2>"$work/server.log" &
  server_pid=$!
  url="http://127.0.0.1:$rest/v1/models/digits:predict"
  for _ in $(seq 1 300); do
    if curl -sf -o /dev/null -X POST -H 'Content-Type: application/json' --data @"$work/body.json" "$url"; then
      return
    fi
    if ! kill -0 "$server_pid" 2>/dev/null; then cat "$work/server.log" >&2; exit 2; fi
    sleep 0.1
  done
  echo "server did not start" >&2; cat "$work/server.log" >&2; exit 2
}

stop_server() { kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""; }

run_load() {
  local concurrency="$1" mode="$2" rps p50 p99 bad
  read -r rps p50 p99 bad < <(wrk_run "$url" "$work/body.json" "$concurrency" "$seconds")
  printf '| %-9s | %11s | %9s | %8s | %8s | %6s |\n' "$mode" "$concurrency" "$rps" "$p50" "$p99" "$bad"
}

echo
echo "smtool serve :predict, fixtures/digits/model, one image per request, ${seconds}s per run with wrk, $(nproc) cores"
echo
echo "| batching  | concurrency | req/s     | p50 (ms) | p99 (ms) | non-2xx / errors |"
echo "|-----------|-------------|-----------|----------|----------|--------|"
start_server
run_load 16 off
run_load 64 off
stop_server
start_server --enable_batching --batching_parameters_file="$work/batching.config"
run_load 16 on
run_load 64 on
stop_server
echo
echo "batching parameters:"; sed 's/^/    /' "$work/batching.config"
echo
echo "In-process ceiling (session run only, benches/serve_inprocess.rs):"
echo
SMTOOL_TEST_PYTHON="${VIRTUAL_ENV:+$VIRTUAL_ENV/bin/python}" cargo bench --quiet --bench serve_inprocess 2>/dev/null \
  | grep -E '^\|( in-process|---| digits predict: session run)'
