#!/usr/bin/env bash
# The main job on a bundled fixture, end to end: give the Keras digits classifier a classify
# signature, serve it with TensorFlow Serving's REST API, and classify a PNG the way TF Serving
# clients do (POST /v1/models/NAME:classify with the image bytes as {"b64": ...}).
# TensorFlow for `serve` is found in an installed Python tensorflow package, else fetched once.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --quiet
smtool=target/release/smtool
work=$(mktemp -d)
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

echo "\$ smtool validate fixtures/digits/model"
"$smtool" validate fixtures/digits/model
echo
echo "\$ smtool add-classify fixtures/digits/model --labels fixtures/digits/labels.txt --feature x=image --top-k 3 --make-default --out digits/1"
"$smtool" add-classify fixtures/digits/model --labels fixtures/digits/labels.txt \
  --feature x=image --top-k 3 --make-default --out "$work/digits/1"
echo
echo "\$ smtool serve digits --rest-api-port 0 --port 0 &"
if [ -z "${VIRTUAL_ENV:-}" ] && [ -x .venv/bin/python ]; then export VIRTUAL_ENV="$PWD/.venv"; fi
"$smtool" serve "$work/digits" --rest-api-port 0 --port 0 2> "$work/serve.log" &
server=$!
for _ in $(seq 1 600); do
  grep -q "REST API on" "$work/serve.log" 2>/dev/null && break
  kill -0 "$server" 2>/dev/null || { cat "$work/serve.log"; exit 2; }
  sleep 0.5
done
cat "$work/serve.log"
url=$(grep -o "http://[0-9.:]*" "$work/serve.log" | head -1)
image=fixtures/digits/images/00_five.png
printf '{"signature_name": "serving_default", "examples": [{"x": {"b64": "%s"}}]}' \
  "$(base64 -w0 "$image")" > "$work/request.json"
echo
echo "\$ curl -X POST $url/v1/models/digits:classify -d '{\"signature_name\": \"serving_default\", \"examples\": [{\"x\": {\"b64\": \"<$image>\"}}]}'"
curl -sS --fail-with-body -X POST "$url/v1/models/digits:classify" -d @"$work/request.json"
echo
