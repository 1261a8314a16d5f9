#!/usr/bin/env bash
# Builds tracefold (release) and runs it on the embedded defaults:
# collector.yaml, the intake log and JSONL under ./data, 127.0.0.1:4318.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/install-deps.sh
swift build -c release --product tracefold
exec "$root/.build/release/tracefold" serve --config "$root/collector.yaml" "$@"
