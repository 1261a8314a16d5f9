extension String {
    /// `body` on the string's UTF-8 bytes, read in place. `withUTF8` is
    /// mutating, and the copy made to call it retained the string's storage
    /// (and released it) each time: some forty times a span in the fold and
    /// the export, where a string read in place is retained by nobody
    /// (bench/runtime_calls.py). Only a string that is not contiguous UTF-8
    /// (bridged) is copied.
    @inlinable
    public func withUTF8Bytes<R>(_ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        if let r = try utf8.withContiguousStorageIfAvailable(body) { return r }
        var s = self
        return try s.withUTF8(body)
    }
}

extension Array where Element == UInt8 {
    /// `s`'s UTF-8 bytes appended, read in place (`String.withUTF8Bytes`):
    /// appending the `utf8` view retained the string's storage.
    @inlinable
    public mutating func appendUTF8(_ s: String) {
        s.withUTF8Bytes { append(contentsOf: $0) }
    }
}
