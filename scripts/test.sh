#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine: installs the packages and
# the Python venv it needs, builds, runs the Swift tests, then the real-client
# tests against a live tracefold. Exits non-zero on any failure.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/install-deps.sh
scripts/python-venv.sh

echo "== private PostgreSQL cluster"
# The store suites and the two-process test run on it as well as on SQLite.
pgdir=$(mktemp -d /tmp/tracefold-pg.XXXXXX)
pgport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
consumer_pid=""
fuzz_pid=""
typecheck_pid=""
pc_empty=""
cleanup() {
  # The background builds, if a step failed before their tests waited for them.
  [ -z "$consumer_pid" ] || pkill -f -- "--scratch-path $root/.build-consumer" 2>/dev/null || true
  [ -z "$fuzz_pid" ] || pkill -f -- "--scratch-path .build-fuzz" 2>/dev/null || true
  [ -z "$typecheck_pid" ] || kill "$typecheck_pid" 2>/dev/null || true
  [ -z "$pc_empty" ] || rm -rf "$pc_empty" "$pc_empty.log"
  scripts/postgres-cluster.sh stop "$pgdir" || true
  rm -rf "$pgdir"
}
trap cleanup EXIT
export TRACEFOLD_TEST_POSTGRES_URL=$(scripts/postgres-cluster.sh start "$pgdir" "$pgport")
export TRACEFOLD_REQUIRE_POSTGRES=1
echo "$TRACEFOLD_TEST_POSTGRES_URL"

echo "== swift build (products and tests in one build)"
# One build of the whole graph: `swift test` after `swift build --product …`
# compiled the dependency graph a second time. It includes swift-otel-app,
# the swift-otel exporter test's app, which shares the collector's graph.
swift build --build-tests
export TRACEFOLD_SWIFT_OTEL_APP="$root/.build/debug/swift-otel-app"
# The consumer app's cold build (tests/consumer: TracefoldTracing with the
# collector's trait off) starts now too, with pkg-config seeing nothing, as
# its test builds it. That test then builds again, incrementally (SwiftPM's
# lock on the scratch folder makes it wait for this one), and inspects what
# that build compiled and linked.
pc_empty=$(mktemp -d /tmp/tracefold-pkgconfig-empty.XXXXXX)
( PKG_CONFIG_PATH=$pc_empty PKG_CONFIG_LIBDIR=$pc_empty nice -n 19 \
    swift build --package-path tests/consumer --scratch-path "$root/.build-consumer" > "$pc_empty.log" 2>&1 || true ) &
consumer_pid=$!
# (nice 19: the collectors under test run their background threads at
# nice 5, and must still get the cores before these builds do.)
# The fuzz targets' build (a scratch folder of its own, with the
# sanitizers) overlaps the tests the same way, and so does the fuzzing
# itself (10 s per target; make fuzz runs 10 minutes each): its output is
# shown at the end. A failed early build is built again, and its errors
# shown, by the fuzzing step.
fuzz_log=$(mktemp /tmp/tracefold-fuzz.XXXXXX)
( nice -n 19 scripts/fuzz.sh --build-only > /tmp/tracefold-fuzz-prebuild.log 2>&1 || true
  nice -n 19 scripts/fuzz.sh 10 ) > "$fuzz_log" 2>&1 &
fuzz_pid=$!
echo "== swift test"
swift test --skip-build
# The type-level tests compile snippets on one core; they run beside pytest,
# which leaves the cores idle between its steps, and their output follows it.
typecheck_log=$(mktemp /tmp/tracefold-typecheck.XXXXXX)
( nice -n 19 scripts/typecheck-misuse.sh > "$typecheck_log" 2>&1 ) &
typecheck_pid=$!

echo "== real-client tests (pytest)"
TRACEFOLD_BIN="$root/.build/debug/tracefold" \
TRACEFOLD_LOADGEN="$root/.build/debug/tracefold-loadgen" \
TRACEFOLD_DEMO="$root/.build/debug/tracefold-demo" \
  "$root/.venv/bin/python" -m pytest -q --durations=12 "$root/tests/python"

echo "== type-level tests (metadata builders: misuse must not compile)"
typecheck_status=0
wait "$typecheck_pid" || typecheck_status=$?
typecheck_pid=""
cat "$typecheck_log"
echo "== fuzzing (10 s per target; make fuzz runs 10 minutes each)"
fuzz_status=0
wait "$fuzz_pid" || fuzz_status=$?
fuzz_pid=""
cat "$fuzz_log"
rm -f "$typecheck_log" "$fuzz_log"
[ "$typecheck_status" -eq 0 ] || { echo "type-level tests failed" >&2; exit 1; }
[ "$fuzz_status" -eq 0 ] || { echo "fuzzing failed" >&2; exit 1; }
