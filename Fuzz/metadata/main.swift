import TracefoldFuzzing

// libFuzzer's entry point; build with scripts/fuzz.sh (-sanitize=fuzzer).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    FuzzTargets.metadata(Array(UnsafeRawBufferPointer(start: start, count: count)))
    return 0
}
