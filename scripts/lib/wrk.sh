# Shared by the serve benchmarks: the load generator wrk (Debian package `wrk`, installed with
# apt-get when missing) and one measured run of it.

ensure_wrk() {
  command -v wrk >/dev/null && return
  echo "==> installing the load generator wrk (apt-get install wrk)" >&2
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq && $sudo apt-get install -y -qq wrk >/dev/null
}

# wrk_run URL BODY_FILE CONCURRENCY SECONDS
# POSTs BODY_FILE as JSON for SECONDS with CONCURRENCY connections (after a 1 s warm-up) and
# prints "req/s p50_ms p99_ms non_2xx_or_socket_errors".
wrk_run() {
  wrk_warm_up "$1" "$2" "$3"
  wrk_measure "$@"
}

# wrk_warm_up URL BODY_FILE CONCURRENCY: one second of the load, its figures dropped.
wrk_warm_up() {
  local script
  script="$(wrk_script)"
  WRK_BODY="$2" wrk -t1 -c"$3" -d1s -s "$script" "$1" >/dev/null
  rm -f "$script"
}

# wrk_measure URL BODY_FILE CONCURRENCY SECONDS: wrk_run without the warm-up.
wrk_measure() {
  local url=$1 body=$2 concurrency=$3 seconds=$4 script threads=1 out
  script="$(wrk_script)"
  [ "$concurrency" -gt 1 ] && threads=2
  out="$(WRK_BODY="$body" wrk -t"$threads" -c"$concurrency" -d"${seconds}s" --latency -s "$script" "$url")"
  rm -f "$script"
  awk '
    function ms(v) {
      if (v ~ /us$/) return v / 1000
      if (v ~ /ms$/) return v + 0
      if (v ~ /s$/) return v * 1000
      return v
    }
    /Requests\/sec:/ { rps = $2 }
    /^ +50%/ { p50 = ms($2) }
    /^ +99%/ { p99 = ms($2) }
    /Non-2xx or 3xx responses:/ { bad += $5 }
    /Socket errors:/ { bad += $4 + $6 + $8 + $10 }
    END { printf "%.0f %.3f %.3f %d\n", rps, p50, p99, bad }
  ' <<<"$out"
}

# A wrk script that POSTs the file named by $WRK_BODY as JSON; prints its path.
wrk_script() {
  local script
  script="$(mktemp --suffix=.lua)"
  cat > "$script" <<'LUA'
local f = assert(io.open(os.getenv("WRK_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
LUA
  echo "$script"
}

# write_bench_bodies PYTHON DIR: the request bodies of the serve benchmarks, one real test image
# for :predict (DIR/predict.json) and one iris row for :classify (DIR/classify.json).
write_bench_bodies() {
  "$1" - "$2" <<'PY'
import json, sys
from PIL import Image
import numpy as np
work = sys.argv[1]
img = np.asarray(Image.open("fixtures/digits/images/00_five.png"), dtype=np.float32) / 255.0
json.dump({"instances": img.reshape(1, 28, 28, 1).tolist()}, open(f"{work}/predict.json", "w"))
json.dump({"examples": [{"x": [5.1, 3.5, 1.4, 0.2]}]}, open(f"{work}/classify.json", "w"))
PY
}
