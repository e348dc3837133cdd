#!/usr/bin/env bash
# Coverage-guided fuzzing of one of smtool's decoders with libFuzzer, on the stable toolchain.
#
#   scripts/fuzz.sh TARGET [SECONDS]      fuzz TARGET for SECONDS (default 600; 0 = until stopped)
#   scripts/fuzz.sh TARGET --replay FILE  run TARGET once on FILE (a crash, a corpus entry)
#   scripts/fuzz.sh TARGET --merge        add to fuzz/corpus/TARGET the inputs of past runs that
#                                         reach new code (those up to 1 KiB: it stays small)
#   scripts/fuzz.sh --list                the targets
#
# Targets are the functions of src/fuzzing.rs; seeds are in fuzz/corpus/TARGET (committed).
# New inputs go to fuzz/target/corpus/TARGET, crashes to fuzz/artifacts/TARGET/. The binaries
# are instrumented with rustc's stable sanitizer-coverage flags (no nightly, no sanitizer); a
# thread that allocates more than 256 MiB for one input aborts (fuzz/src/bounded_alloc.rs).
# Needs a C++ compiler for libFuzzer itself (g++ or clang++).
set -euo pipefail
cd "$(dirname "$0")/.."

targets=$(sed -n 's/^name = "\([a-z_]*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^smtool-fuzz$')
if [ "${1:-}" = "--list" ] || [ $# -eq 0 ]; then
  echo "$targets"
  [ $# -gt 0 ] || { echo "usage: scripts/fuzz.sh TARGET [SECONDS | --replay FILE]" >&2; exit 2; }
  exit 0
fi
target=$1
if ! grep -qx "$target" <<<"$targets"; then
  echo "fuzz.sh: no target '$target' (targets: $(echo $targets))" >&2
  exit 2
fi

host=$(rustc -vV | sed -n 's/^host: //p')
export RUSTFLAGS="${RUSTFLAGS:-} --cfg fuzzing -Cpasses=sancov-module \
  -Cllvm-args=-sanitizer-coverage-level=4 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
  -Cllvm-args=-sanitizer-coverage-pc-table -Cllvm-args=-sanitizer-coverage-trace-compares"
# An explicit --target keeps build scripts and proc macros uninstrumented.
cargo build --quiet --release --manifest-path fuzz/Cargo.toml --target "$host" --bin "$target"
bin="fuzz/target/$host/release/$target"

if [ "${2:-}" = "--replay" ]; then
  exec "$bin" -rss_limit_mb=2048 "${3:?--replay needs a file}"
fi
work="fuzz/target/corpus/$target"
if [ "${2:-}" = "--merge" ]; then
  small=$(mktemp -d)
  trap 'rm -rf "$small"' EXIT
  find "$work" -type f -size -1025c -exec cp {} "$small/" \;
  "$bin" -merge=1 -use_counters=0 "fuzz/corpus/$target" "$small"
  exit 0
fi
seconds=${2:-600}
artifacts="fuzz/artifacts/$target"
mkdir -p "$work" "$artifacts"
exec "$bin" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -max_len=262144 \
  -artifact_prefix="$artifacts/" "$work" "fuzz/corpus/$target"
