#!/usr/bin/env bash
# Compares two builds of `smtool serve` side by side on one machine, as fairly as a shared
# machine allows: both servers run at once (same models, same flags, one idle while the other
# is loaded), and the load runs alternate between them, round after round, so that whatever
# else the machine is doing falls on both alike. Per endpoint and concurrency it prints the
# median and the spread (min-max) over the rounds of
#   - throughput (req/s, wrk), which on a busy machine swings with the other load, and
#   - the server's CPU time per request (user + system, from /proc/PID/stat), which swings
#     much less and is what the request limits may cost.
#
# Usage: scripts/bench_serve_ab.sh OLD_SMTOOL NEW_SMTOOL [ROUNDS]
#   e.g. git worktree add ../smtool-old 352ec7e && (cd ../smtool-old && cargo build --release)
#        cargo build --release
#        scripts/bench_serve_ab.sh ../smtool-old/target/release/smtool target/release/smtool 8
# BENCH_SECONDS sets the length of each run (default 5), BENCH_CONCURRENCY the concurrencies
# (default "1 16"). Needs wrk and the reference Python (.venv), as scripts/bench_serve.sh does.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { sed -n 2,17p "$0" >&2; exit 2; }

OLD=$1 NEW=$2 ROUNDS=${3:-5}
PY=${SMTOOL_TEST_PYTHON:-$PWD/.venv/bin/python}
SECONDS_PER_RUN=${BENCH_SECONDS:-5}
CONCURRENCY=${BENCH_CONCURRENCY:-"1 16"}
export TF_CPP_MIN_LOG_LEVEL=3

source scripts/lib/wrk.sh
ensure_wrk
[ -x "$PY" ] || { echo "bench_serve_ab.sh needs the reference Python: run scripts/test.sh first" >&2; exit 2; }

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

write_bench_bodies "$PY" "$work"

start() { # label binary rest_port grpc_port
  VIRTUAL_ENV="$(dirname "$(dirname "$PY")")" "$2" serve \
    --model digits=fixtures/digits/model --model iris=fixtures/iris_tf1 \
    --rest-api-port "$3" --port "$4" --file_system_poll_wait_seconds 0 --no-fetch \
    2> "$work/$1.log" &
  pids+=($!)
  for _ in $(seq 1 600); do
    curl -s -o /dev/null -X POST -d @"$work/classify.json" \
      "http://127.0.0.1:$3/v1/models/iris:classify" && return 0
    sleep 0.1
  done
  echo "$1 server did not come up:" >&2; cat "$work/$1.log" >&2; exit 1
}

start old "$OLD" 18631 18632
start new "$NEW" 18641 18642
declare -A port=([old]=18631 [new]=18641) pid=([old]=${pids[0]} [new]=${pids[1]})
ticks=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

echo "==> $ROUNDS rounds of ${SECONDS_PER_RUN}s runs, old and new alternating" >&2
for round in $(seq 1 "$ROUNDS"); do
  for endpoint in predict classify; do
    model=digits; [ "$endpoint" = classify ] && model=iris
    for c in $CONCURRENCY; do
      # Alternate which build goes first, so neither always follows the same neighbour.
      order="old new"; [ $((round % 2)) = 0 ] && order="new old"
      for build in $order; do
        url="http://127.0.0.1:${port[$build]}/v1/models/$model:$endpoint"
        wrk_warm_up "$url" "$work/$endpoint.json" "$c"
        before=$(cpu_ticks "${pid[$build]}")
        read -r rps _ _ bad < <(wrk_measure "$url" "$work/$endpoint.json" "$c" "$SECONDS_PER_RUN")
        after=$(cpu_ticks "${pid[$build]}")
        awk -v b="$build" -v e="$endpoint" -v c="$c" -v r="$rps" -v bad="$bad" \
          -v t=$((after - before)) -v hz="$ticks" -v s="$SECONDS_PER_RUN" \
          'BEGIN { printf "%s %s %s %s %.1f %s\n", b, e, c, r, t / hz * 1e6 / (r * s), bad }' \
          >> "$work/runs.txt"
      done
    done
  done
  echo "    round $round done" >&2
done

echo
echo "$ROUNDS interleaved rounds, ${SECONDS_PER_RUN}s per run, $(nproc) cores, $(date -u +%Y-%m-%d):"
echo
echo "| endpoint | concurrency | req/s old | req/s new | change | CPU µs/request old | CPU µs/request new | change |"
echo "|---|---|---|---|---|---|---|---|"
"$PY" - "$work/runs.txt" <<'EOF'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    build, endpoint, c, rps, cpu, bad = line.split()
    if int(bad):
        print(f"warning: {bad} failed requests in a {build} {endpoint} run", file=sys.stderr)
    runs.setdefault((endpoint, int(c), build), []).append((float(rps), float(cpu)))
def cell(values, fmt):
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}-{fmt.format(max(values))})"
for endpoint in ("predict", "classify"):
    for c in sorted({k[1] for k in runs}):
        old, new = runs[(endpoint, c, "old")], runs[(endpoint, c, "new")]
        row = [f":{endpoint}", str(c)]
        for i, fmt in ((0, "{:.0f}"), (1, "{:.1f}")):
            o, n = [r[i] for r in old], [r[i] for r in new]
            change = (statistics.median(n) / statistics.median(o) - 1) * 100
            row += [cell(o, fmt), cell(n, fmt), f"{change:+.1f}%"]
        print("| " + " | ".join(row) + " |")
EOF
