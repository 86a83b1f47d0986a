import Synchronization

/// A switch that hot paths read without taking a lock while another thread may flip it
/// (the event log's and the invariant checker's on/off, "any foreign frame"): a relaxed
/// atomic, so the read is a plain load on x86-64 and arm64 yet not a data race. A stale
/// read only records or checks one request more or fewer, as with the kernel's static
/// keys. The DMA engine holds it `unowned(unsafe)`, so reading costs no reference count.
package final class AtomicFlag: Sendable {
    @usableFromInline let value: Atomic<Bool>

    /// A flag that starts as `initial`.
    package init(_ initial: Bool = false) { value = Atomic(initial) }

    /// The current value (relaxed).
    @inlinable @inline(__always)
    package var isSet: Bool { value.load(ordering: .relaxed) }

    /// Sets the value (relaxed; callers that need ordering with other state hold their
    /// own lock around the change).
    @inlinable @inline(__always)
    package func set(_ newValue: Bool) { value.store(newValue, ordering: .relaxed) }
}
