#!/usr/bin/env bash
# Creates .venv with the real OpenTelemetry clients the tests use. Rebuilt
# when tests/python/requirements.txt changes.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
req="$root/tests/python/requirements.txt"
venv="$root/.venv"
stamp="$venv/.requirements-$(sha256sum "$req" | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$req"
  touch "$stamp"
fi
