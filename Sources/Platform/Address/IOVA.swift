/// An I/O virtual address: an address a device puts on the bus, which the IOMMU
/// translates through the domain attached to the device's RID or PASID (`dma_addr_t`
/// and the `unsigned long iova` of `iommu_map`/`iommu_unmap`). Under SVA a device's
/// IOVAs are the process's virtual addresses: ``init(sva:)``.
///
/// See ``MachineAddress`` for the arithmetic; ``PhysicalAddress`` is the other side of a
/// translation.
@frozen
public struct IOVA: MachineAddress {
    /// The address as the hardware and the uAPI carry it.
    public var rawValue: UInt64

    /// The IOVA whose raw value is `rawValue`.
    @inlinable @inline(__always)
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// The IOVA through which a device bound to an address space with SVA reaches its
    /// virtual address `va` (`iommu_sva_bind_device`, or the kernel's own table under
    /// supervisor SVA): the same number, since the PASID's first stage is the CPU's page
    /// table. Virtual addresses stay plain integers in the model, as the kernel's
    /// `unsigned long`; this is where one becomes a device address.
    @inlinable @inline(__always)
    public init(sva va: UInt64) { rawValue = va }

    /// The IOVA that reaches physical address `pa` where translation is the identity: an
    /// IDENTITY domain or pass-through entry, or a device behind no IOMMU (dma-direct's
    /// `phys_to_dma`): the same number.
    @inlinable @inline(__always)
    public init(identity pa: PhysicalAddress) { rawValue = pa.rawValue }

    /// The highest IOVA (`ULONG_MAX`): an empty gather's start, the end of a domain
    /// aperture that spans the 64-bit space.
    @inlinable public static var max: IOVA { IOVA(rawValue: .max) }

    /// The IOVA `rhs` bytes further on. Traps on overflow, as integer `+` does.
    @inlinable @inline(__always)
    public static func + (lhs: IOVA, rhs: UInt64) -> IOVA { IOVA(rawValue: lhs.rawValue + rhs) }

    /// The IOVA `rhs` bytes further on, wrapping past 2^64 (for hot paths whose range was
    /// checked on entry).
    @inlinable @inline(__always)
    public static func &+ (lhs: IOVA, rhs: UInt64) -> IOVA { IOVA(rawValue: lhs.rawValue &+ rhs) }

    /// Moves the IOVA `rhs` bytes further on. Traps on overflow.
    @inlinable @inline(__always)
    public static func += (lhs: inout IOVA, rhs: UInt64) { lhs.rawValue += rhs }

    /// The address `rhs` bytes lower. Traps on underflow, as integer `-` does.
    @inlinable @inline(__always)
    public static func - (lhs: IOVA, rhs: UInt64) -> IOVA { IOVA(rawValue: lhs.rawValue - rhs) }
}
