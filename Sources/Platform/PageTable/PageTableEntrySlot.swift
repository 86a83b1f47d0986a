import Synchronization

/// One 64-bit page-table entry in physical memory, accessed as the kernel's page-table
/// code and the hardware walker access it while other CPUs change the same table: every
/// load and store is single-copy atomic (`READ_ONCE`/`WRITE_ONCE`), a new table level is
/// linked with a compare-and-swap (`cmpxchg64`), and a walker sets accessed and dirty
/// bits with a compare-and-swap too, so it never brings back an entry an unmap cleared.
///
/// Loads acquire and stores release: whoever follows a table pointer sees the zeroed
/// table page behind it, and whoever translates through a leaf sees what was written to
/// the page before it was mapped. On x86-64 both are plain moves; only the
/// compare-and-swap is a locked instruction.
@frozen @usableFromInline
struct PageTableEntrySlot {
    @usableFromInline let pointer: UnsafeMutableRawPointer

    @inlinable @inline(__always)
    init(_ pointer: UnsafeMutableRawPointer) { self.pointer = pointer }

    @inlinable @inline(__always)
    var atomic: UnsafeMutablePointer<Atomic<UInt64>> { pointer.assumingMemoryBound(to: Atomic<UInt64>.self) }

    /// The entry.
    @inlinable @inline(__always)
    func load() -> UInt64 { atomic.pointee.load(ordering: .acquiring) }

    /// Writes the entry (a leaf this caller owns, or 0 to clear one).
    @inlinable @inline(__always)
    func store(_ value: UInt64) { atomic.pointee.store(value, ordering: .releasing) }

    /// Replaces `expected` with `desired` if the entry still holds `expected`; returns
    /// whether it did and the value found.
    @inlinable @inline(__always)
    func compareExchange(expected: UInt64, desired: UInt64) -> (exchanged: Bool, original: UInt64) {
        atomic.pointee.compareExchange(expected: expected, desired: desired, ordering: .acquiringAndReleasing)
    }
}
