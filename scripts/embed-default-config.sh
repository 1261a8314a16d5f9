#!/usr/bin/env bash
# Copies collector.yaml into Sources/TracefoldConfig/EmbeddedDefaults.swift so
# the binary carries its defaults. ConfigTests fails if the two differ.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
{
  echo '// Generated from collector.yaml by scripts/embed-default-config.sh; a test'
  echo '// checks that the two stay equal.'
  echo 'extension CollectorConfig {'
  echo '    /// The repository'"'"'s collector.yaml, used when no config file is found.'
  echo '    public static let embeddedDefaultYAML = #"""'
  cat "$root/collector.yaml"
  echo
  echo '"""#'
  echo '}'
} > "$root/Sources/TracefoldConfig/EmbeddedDefaults.swift"
