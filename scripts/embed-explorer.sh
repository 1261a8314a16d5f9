#!/usr/bin/env bash
# Copies the explorer's files (Sources/TracefoldExplorer/assets) into
# Sources/TracefoldExplorer/ExplorerAssets.swift, so the binary serves /ui/
# with nothing beside it. ExplorerTests fails if the two differ.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
assets="$root/Sources/TracefoldExplorer/assets"
out="$root/Sources/TracefoldExplorer/ExplorerAssets.swift"
{
  echo '// Generated from Sources/TracefoldExplorer/assets by scripts/embed-explorer.sh;'
  echo '// ExplorerTests checks that the two stay equal.'
  echo 'extension ExplorerAssets {'
  echo '    /// File name → contents, as in the assets folder.'
  echo '    static let files: [String: String] = ['
  for f in $(cd "$assets" && ls | LC_ALL=C sort); do
    if grep -q '"""##' "$assets/$f"; then echo "embed-explorer: $f holds the delimiter \"\"\"##" >&2; exit 1; fi
    echo "        \"$f\": ##\"\"\""
    cat "$assets/$f"
    # The literal drops the newline before its closing delimiter.
    [ -z "$(tail -c1 "$assets/$f")" ] && echo
    echo '"""##,'
  done
  echo '    ]'
  echo '}'
} > "$out.tmp"
mv "$out.tmp" "$out"
