/// A physical address of the simulated machine: where bytes are in ``PhysicalMemory``
/// (`phys_addr_t`): what a page-table leaf, a context or PASID entry, a DMA buffer or a
/// frame from the allocator holds. PA 0 is never handed out, so `iommu_iova_to_phys`
/// returns it for "not mapped".
///
/// See ``MachineAddress`` for the arithmetic; ``IOVA`` is the other side of a
/// translation.
@frozen
public struct PhysicalAddress: MachineAddress {
    /// The address as the hardware tables carry it.
    public var rawValue: UInt64

    /// The physical address whose raw value is `rawValue`.
    @inlinable @inline(__always)
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// The physical address an identity translation gives for `iova` (an IDENTITY
    /// domain, a pass-through entry, no IOMMU): the same number.
    @inlinable @inline(__always)
    public init(identity iova: IOVA) { rawValue = iova.rawValue }

    /// The address `rhs` bytes further on. Traps on overflow, as integer `+` does.
    @inlinable @inline(__always)
    public static func + (lhs: PhysicalAddress, rhs: UInt64) -> PhysicalAddress {
        PhysicalAddress(rawValue: lhs.rawValue + rhs)
    }

    /// The address `rhs` bytes further on, wrapping past 2^64 (for hot paths whose range was
    /// checked on entry).
    @inlinable @inline(__always)
    public static func &+ (lhs: PhysicalAddress, rhs: UInt64) -> PhysicalAddress {
        PhysicalAddress(rawValue: lhs.rawValue &+ rhs)
    }

    /// Moves the address `rhs` bytes further on. Traps on overflow.
    @inlinable @inline(__always)
    public static func += (lhs: inout PhysicalAddress, rhs: UInt64) { lhs.rawValue += rhs }

    /// The address `rhs` bytes lower. Traps on underflow, as integer `-` does.
    @inlinable @inline(__always)
    public static func - (lhs: PhysicalAddress, rhs: UInt64) -> PhysicalAddress { PhysicalAddress(rawValue: lhs.rawValue - rhs) }
}
