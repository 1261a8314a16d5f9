extension Dictionary {
    /// `body` applied to the value stored under `key`, read where it is
    /// stored; nil when there is none. `self[key]?.field` copies the whole
    /// value first (a retain of each of its references, and a release
    /// after), which for a trace's state is dozens a read.
    @inlinable
    public func withValue<R>(forKey key: Key, _ body: (Value) throws -> R) rethrows -> R? {
        guard let index = index(forKey: key) else { return nil }
        return try body(values[index])
    }
}

extension Dictionary where Key: Comparable {
    /// `body` applied to the dictionary's pairs in ascending key order,
    /// sorted in a temporary buffer (on the stack while it is small) rather
    /// than a new array: `sorted(by:)` was an allocation for every object
    /// written in key order, several for each span the fold renders.
    @inlinable
    public func withPairsSortedByKey<R>(_ body: (UnsafeBufferPointer<Element>) throws -> R) rethrows -> R {
        try withUnsafeTemporaryAllocation(of: Element.self, capacity: count) { storage in
            var buffer = storage
            var initialized = buffer.startIndex
            for pair in self {
                buffer.initializeElement(at: initialized, to: pair)
                initialized += 1
            }
            defer { buffer.baseAddress?.deinitialize(count: initialized) }
            buffer.sort { $0.key < $1.key }
            return try body(UnsafeBufferPointer(buffer))
        }
    }
}
