#!/usr/bin/env bash
# The main job on a bundled fixture, end to end, exactly as the README's set-up transcript shows
# it: install smtool, give the Keras digits classifier a classify signature, serve it with
# TensorFlow Serving's REST and gRPC APIs, and classify a PNG the way TF Serving clients do.
# Writes under scratch/ (ignored by git). TensorFlow for `serve` is found in an installed Python
# tensorflow package (.venv when scripts/test.sh has set it up), else fetched once.
# tests/docs.rs checks that the commands below are the README's.
set -euo pipefail
cd "$(dirname "$0")/.."

bin="${CARGO_INSTALL_ROOT:-${CARGO_HOME:-$HOME/.cargo}}/bin"
echo "==> cargo install --path . (puts smtool in $bin)"
cargo install --quiet --locked --path .
export PATH="$bin:$PATH"
if [ -z "${VIRTUAL_ENV:-}" ] && [ -x .venv/bin/python ]; then export VIRTUAL_ENV="$PWD/.venv"; fi
# The demo's own output from an earlier run.
rm -rf scratch/digits scratch/five.json

trap 'kill %1 2>/dev/null || true' EXIT
first=1
while IFS= read -r command <&3; do
  [ "$first" = 1 ] || echo
  first=0
  echo "\$ $command"
  eval "$command"
  case "$command" in
    *"smtool serve"*"&")
      # Wait until the model answers (serve prints its addresses when it is ready).
      until curl -sf -o /dev/null http://127.0.0.1:8501/v1/models/digits; do
        if ! kill -0 %1 2>/dev/null; then echo "smtool serve stopped; see its message above" >&2; exit 2; fi
        sleep 0.5
      done ;;
    curl*) echo ;;
    "kill %1") wait ;;
  esac
done 3<<'TRANSCRIPT'
smtool validate fixtures/digits/model
smtool add-classify fixtures/digits/model --labels fixtures/digits/labels.txt --feature x=image --top-k 3 --make-default --out scratch/digits/1
smtool serve scratch/digits &
printf '{"examples": [{"x": {"b64": "%s"}}]}' "$(base64 -w0 fixtures/digits/images/00_five.png)" > scratch/five.json
curl -s -X POST http://127.0.0.1:8501/v1/models/digits:classify -d @scratch/five.json
kill %1
TRANSCRIPT
trap - EXIT
