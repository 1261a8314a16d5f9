#!/usr/bin/env bash
# Builds the libFuzzer targets (protobuf, json, gzip, metadata) with
# -sanitize=fuzzer and address sanitizer in .build-fuzz, and runs each for
# FUZZ_SECONDS (default 600). New corpus entries go to a scratch directory,
# the committed seeds under Fuzz/corpus/ are read; a crash leaves its input
# in Fuzz/crash-<target>-*, which belongs in Fuzz/regressions/<target>/ once
# fixed (FuzzCorpusTests replays it on every test run).
#   scripts/fuzz.sh [seconds] [target...]
#   scripts/fuzz.sh --build-only [target...]   (the test command builds early)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build_only=false
if [ "${1:-}" = "--build-only" ]; then build_only=true; shift; set -- 0 "$@"; fi
seconds=${1:-${FUZZ_SECONDS:-600}}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(protobuf json gzip metadata)

scripts/install-deps.sh >/dev/null
sanitizers=(--sanitize=fuzzer --sanitize=address)
build() { TRACEFOLD_FUZZ=1 swift build --scratch-path .build-fuzz -c debug "${sanitizers[@]}" --product "fuzz-$1"; }
for t in "${targets[@]}"; do
  if ! build "$t" >/tmp/tracefold-fuzz-build.log 2>&1; then
    echo "fuzz: address sanitizer build failed; building with the fuzzer alone" >&2
    tail -5 /tmp/tracefold-fuzz-build.log >&2
    sanitizers=(--sanitize=fuzzer)
    build "$t"
  fi
done
$build_only && exit 0
bin=$(TRACEFOLD_FUZZ=1 swift build --scratch-path .build-fuzz -c debug "${sanitizers[@]}" --show-bin-path)

status=0
for t in "${targets[@]}"; do
  work=$(mktemp -d)
  # Known crashes first: they must all pass before new inputs are tried.
  if compgen -G "Fuzz/regressions/$t/*" >/dev/null; then
    "$bin/fuzz-$t" Fuzz/regressions/"$t"/* >/dev/null 2>&1 || { echo "fuzz-$t: a regression input fails again" >&2; status=1; }
  fi
  echo "fuzz-$t: ${seconds}s"
  if ! "$bin/fuzz-$t" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=4096 -max_len=65536 -print_final_stats=1 \
      -artifact_prefix="Fuzz/crash-$t-" "$work" "Fuzz/corpus/$t" 2>"$work.log"; then
    status=1
    echo "fuzz-$t: CRASH; input saved as Fuzz/crash-$t-*" >&2
    grep -E "ERROR|SUMMARY|Fatal error|==[0-9]+==" "$work.log" | head -20 >&2
  fi
  grep -E "^stat::(number_of_executed_units|new_units_added|peak_rss_mb)" "$work.log" | sed "s/^/fuzz-$t /"
  rm -rf "$work" "$work.log"
done
exit $status
