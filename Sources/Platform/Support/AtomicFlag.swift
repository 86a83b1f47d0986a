import Synchronization

/// A switch that hot paths read without taking a lock while another thread may flip it
/// (the event log's and the invariant checker's on/off, "any foreign frame"): a relaxed
/// atomic, so the read is a plain load on x86-64 and arm64 yet not a data race. A stale
/// read only records or checks one request more or fewer, as with the kernel's static
/// keys. The atomic lives in its own allocation, so the DMA engine can keep a
/// ``Reference`` to it: reading through that costs a load, not a reference count or a
/// call.
package final class AtomicFlag: Sendable {
    /// The atomic, allocated with the flag and freed with it.
    @usableFromInline nonisolated(unsafe) let storage: UnsafeMutablePointer<Atomic<Bool>>

    /// A flag that starts as `initial`.
    package init(_ initial: Bool = false) {
        storage = .allocate(capacity: 1)
        storage.initialize(to: Atomic(initial))
    }

    deinit {
        storage.deinitialize(count: 1)
        storage.deallocate()
    }

    /// The current value (relaxed).
    @inlinable @inline(__always)
    package var isSet: Bool { storage.pointee.load(ordering: .relaxed) }

    /// Sets the value (relaxed; callers that need ordering with other state hold their
    /// own lock around the change).
    @inlinable @inline(__always)
    package func set(_ newValue: Bool) { storage.pointee.store(newValue, ordering: .relaxed) }

    /// The flag's atomic without the object: valid while the flag lives, which whoever
    /// holds the reference must ensure (the DMA engine's path is cleared before its
    /// machine, and so the flags, go away).
    package var reference: Reference { Reference(storage: storage) }

    /// A borrowed view of an ``AtomicFlag``'s atomic: a pointer, copied without reference
    /// counting.
    package struct Reference: @unchecked Sendable {
        @usableFromInline let storage: UnsafeMutablePointer<Atomic<Bool>>

        /// The current value (relaxed).
        @inlinable @inline(__always)
        package var isSet: Bool { storage.pointee.load(ordering: .relaxed) }
    }
}
