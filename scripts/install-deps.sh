#!/usr/bin/env bash
# Installs the Debian packages tracefold builds and tests with, if missing.
# Safe to run again; does nothing when everything is there.
#   --bench  also linux-perf, for the bench's per-stage profile
set -euo pipefail
packages=(libprotobuf-c-dev zlib1g-dev libzstd-dev libdeflate-dev libsqlite3-dev libjemalloc-dev python3-venv pkg-config postgresql openssl chromium chromium-driver)
[ "${1:-}" != "--bench" ] || packages+=(linux-perf)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v swift >/dev/null || { echo "swift is not on PATH (expected the toolchain at /opt/swift)" >&2; exit 1; }
