#!/usr/bin/env bash
# Type-level tests of TracefoldTracing's metadata builders: each address
# method can be used once, so misuse must not compile. A negative compile
# test cannot live in XCTest, so this typechecks the snippets in
# tests/typelevel/ against the debug build's modules: builder-valid.swift must
# compile (so a broken setup cannot pass), and every other snippet must fail
# with the diagnostic on its "expected-error:" line. The README's Swift
# example is typechecked the same way, so it cannot rot.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
swift build --target TracefoldTracing >/dev/null
modules=.build/debug/Modules
# The C modules the Swift modules import need their module maps and headers.
flags=()
while read -r map; do
  flags+=(-Xcc "-fmodule-map-file=$map" -Xcc "-I$(dirname "$map")")
done < <( (find .build/debug/ -maxdepth 2 -name module.modulemap | grep -v -- '-tool.build'
           find .build/checkouts Sources -path '*Sources/*' -name module.modulemap | grep -v 'Tests\|Benchmarks\|SQLCipher') | sort -u)
# @Observed expands through the macro plugin SwiftPM built.
flags+=(-load-plugin-executable ".build/debug/TracefoldTracingMacros-tool#TracefoldTracingMacros")
typecheck() { swiftc -typecheck -I "$modules" "${flags[@]}" "$1" 2>&1; }

# The README's example must compile as it is printed.
readme_example=$(mktemp -d)/readme-example.swift
trap 'rm -rf "$(dirname "$readme_example")"' EXIT
awk '/^## Tracing a Swift app/{s=1} s&&/^```swift/{c=1;next} c&&/^```/{exit} c' README.md > "$readme_example"
[ -s "$readme_example" ] || { echo "FAIL no Swift example under '## Tracing a Swift app' in README.md"; exit 1; }

status=0
for snippet in tests/typelevel/*.swift "$readme_example"; do
  expected=$(sed -n 's#^// expected-error: ##p' "$snippet")
  if output=$(typecheck "$snippet"); then
    if [ -n "$expected" ]; then echo "FAIL $snippet compiled; expected: $expected"; status=1; else echo "ok   $snippet compiles"; fi
  else
    if [ -z "$expected" ]; then
      echo "FAIL $snippet did not compile:"; echo "$output" | grep error | head -5; status=1
    elif grep -qF "$expected" <<<"$output"; then
      echo "ok   $snippet is rejected: $expected"
    else
      echo "FAIL $snippet failed for another reason:"; echo "$output" | grep error | head -5; status=1
    fi
  fi
done
exit $status
