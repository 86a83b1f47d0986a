/// A log that keeps only its newest `limit` entries, oldest first: a ring buffer, so
/// appending stays O(1) and allocation-free once full. For logs recorded on hot paths
/// (invalidation descriptors, driver operations), where an unbounded array would grow
/// for the whole life of a long run; tests look at the recent entries only.
/// Inlinable so that other modules get it specialized for their element type.
public struct BoundedLog<Element> {
    /// How many of the newest entries are kept.
    public let limit: Int
    @usableFromInline var storage: [Element] = []
    /// Index of the oldest entry once the ring is full.
    @usableFromInline var head = 0

    /// An empty log keeping at most `limit` (> 0) entries.
    public init(limit: Int) {
        precondition(limit > 0)
        self.limit = limit
    }

    /// Appends `e`, dropping the oldest entry when full.
    @inlinable public mutating func append(_ e: Element) {
        if storage.count < limit {
            storage.append(e)
        } else {
            storage[head] = e
            head = head + 1 == limit ? 0 : head + 1
        }
    }

    /// Forgets every entry (keeps the buffer).
    @inlinable public mutating func removeAll() {
        storage.removeAll(keepingCapacity: true)
        head = 0
    }

    /// The kept entries, oldest first.
    @inlinable public var elements: [Element] { Array(storage[head...] + storage[..<head]) }
}
