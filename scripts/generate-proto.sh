#!/usr/bin/env bash
# Regenerates the protobuf-c sources in Sources/OTLPProtoC from proto/.
# Needs Debian's protobuf-c-compiler (protoc-c). CI does not run this: the
# output is committed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/Sources/OTLPProtoC"
command -v protoc-c >/dev/null || { echo "protoc-c not found: apt-get install protobuf-c-compiler" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$root/proto"
protoc-c --c_out="$tmp" \
  google/protobuf/any.proto \
  google/rpc/status.proto \
  opentelemetry/proto/common/v1/common.proto \
  opentelemetry/proto/resource/v1/resource.proto \
  opentelemetry/proto/trace/v1/trace.proto \
  opentelemetry/proto/collector/trace/v1/trace_service.proto
rm -rf "$out"
mkdir -p "$out/include"
# SwiftPM wants public headers in include/ and flat source names; keep the
# generated relative #include paths working by mirroring the tree under include/.
(cd "$tmp" && find . -name '*.pb-c.h' -exec install -D -m 644 {} "$out/include/{}" \;)
(cd "$tmp" && find . -name '*.pb-c.c' | while read -r f; do
  name=$(echo "${f#./}" | tr '/' '_')
  install -m 644 "$f" "$out/$name"
done)
cat > "$out/include/OTLPProtoC.h" <<'H'
// Umbrella header for the protobuf-c code generated from proto/.
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "google/rpc/status.pb-c.h"
H
cat > "$out/include/module.modulemap" <<'M'
module OTLPProtoC {
    header "OTLPProtoC.h"
    export *
}
M
echo "generated into $out"
