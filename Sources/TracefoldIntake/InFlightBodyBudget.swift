import NIOConcurrencyHelpers

/// Bounds the bytes of request bodies being read or held at once, across
/// all connections. The memory limiter samples RSS once per interval and
/// decides before a body is read, so on its own a burst of large bodies
/// could pass it together (otelcol's known gap, issue #8632); this budget is
/// checked on every chunk, and a request that would pass it gets 503.
public final class InFlightBodyBudget: Sendable {
    public let limit: Int
    private let used = NIOLockedValueBox(0)

    public init(limit: Int) { self.limit = limit }

    public var inUse: Int { used.withLockedValue { $0 } }

    /// One request's share; give it back with `releaseAll` once the request
    /// no longer holds its body.
    public final class Reservation: @unchecked Sendable {
        let budget: InFlightBodyBudget
        // Only the request's own task touches it.
        private(set) var bytes = 0

        init(budget: InFlightBodyBudget) { self.budget = budget }

        /// Raises the reservation to `total` bytes; false if the budget
        /// cannot cover it.
        func grow(to total: Int) -> Bool {
            guard total > bytes else { return true }
            let delta = total - bytes
            let ok = budget.used.withLockedValue { used -> Bool in
                guard used + delta <= budget.limit else { return false }
                used += delta
                return true
            }
            if ok { bytes = total }
            return ok
        }

        func releaseAll() {
            let n = bytes
            bytes = 0
            budget.used.withLockedValue { $0 -= n }
        }
    }

    func reserve() -> Reservation { Reservation(budget: self) }
}
