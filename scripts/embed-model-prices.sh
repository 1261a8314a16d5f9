#!/usr/bin/env bash
# Copies pricing/models.json into Sources/TracefoldMapping/BuiltInModels.swift
# so the binary carries its built-in model prices. A test fails if the two
# differ.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
{
  echo '// Generated from pricing/models.json by scripts/embed-model-prices.sh; a'
  echo '// test checks that the two stay equal.'
  echo 'extension ModelDefinition {'
  echo '    /// The repository'"'"'s pricing/models.json.'
  echo '    public static let builtInJSON = #"""'
  cat "$root/pricing/models.json"
  echo '"""#'
  echo '}'
} > "$root/Sources/TracefoldMapping/BuiltInModels.swift"
