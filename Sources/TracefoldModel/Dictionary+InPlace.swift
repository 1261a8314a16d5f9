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
