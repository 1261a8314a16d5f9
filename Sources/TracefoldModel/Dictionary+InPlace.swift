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

    /// `body` applied to the value stored under `key`, lent in place
    /// through `values`' modify accessor; nil when there is none.
    /// `withValue`'s `values[index]` is a getter: the optimizer forwards a
    /// field read to the storage, but a value handed to a function that is
    /// not inlined is copied first (for a trace, a retain and a release of
    /// each of its references).
    @inlinable
    public mutating func withValueInPlace<R>(forKey key: Key, _ body: (inout Value) throws -> R) rethrows -> R? {
        guard let index = index(forKey: key) else { return nil }
        return try body(&values[index])
    }
}

extension Dictionary where Key: Comparable {
    /// `body` applied to the dictionary's pairs in ascending key order
    /// (`withSortedTemporaryBuffer`): `sorted(by:)` was an allocation for
    /// every object written in key order, several for each span the fold
    /// renders.
    @inlinable
    public func withPairsSortedByKey<R>(_ body: (UnsafeBufferPointer<Element>) throws -> R) rethrows -> R {
        try withSortedTemporaryBuffer(of: Element.self, count: count, fill: { append in
            for pair in self { append(pair) }
        }, by: { $0.key < $1.key }, body)
    }
}

/// `body` applied to the `count` elements that `fill` appends, sorted by
/// `less` in a temporary buffer (on the stack while it is small) rather
/// than in an array made for the occasion. `fill` appends at most `count`.
@inlinable
public func withSortedTemporaryBuffer<T, R>(
    of type: T.Type, count: Int, fill: (_ append: (T) -> Void) -> Void, by less: (T, T) -> Bool,
    _ body: (UnsafeBufferPointer<T>) throws -> R
) rethrows -> R {
    try withUnsafeTemporaryAllocation(of: T.self, capacity: count) { storage in
        var initialized = 0
        fill { element in
            precondition(initialized < count, "more elements than the buffer was made for")
            storage.initializeElement(at: initialized, to: element)
            initialized += 1
        }
        defer { storage.baseAddress?.deinitialize(count: initialized) }
        var sorted = UnsafeMutableBufferPointer(rebasing: storage[..<initialized])
        sorted.sort(by: less)
        return try body(UnsafeBufferPointer(sorted))
    }
}
