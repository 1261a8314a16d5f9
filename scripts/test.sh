#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine: installs the packages and
# the Python venv it needs, builds, runs the Swift tests, then the real-client
# tests against a live tracefold. Exits non-zero on any failure.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/install-deps.sh
scripts/python-venv.sh

echo "== swift build"
swift build --product tracefold
swift build --product tracefold-loadgen
echo "== swift test"
swift test

echo "== real-client tests (pytest)"
TRACEFOLD_BIN="$root/.build/debug/tracefold" \
TRACEFOLD_LOADGEN="$root/.build/debug/tracefold-loadgen" \
  "$root/.venv/bin/python" -m pytest -q "$root/tests/python"
