extension Duration {
    /// The duration in seconds as a Double, for APIs that take a
    /// TimeInterval (condition waits, semaphores) and for rates.
    public var inSeconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
