/// A Process Address Space ID: the tag of a PCIe PASID TLP prefix that selects which
/// address space translates a device's request (the kernel's `ioasid_t`).
///
/// A request without the prefix has no PASID, and that is spelled one way in the Swift
/// API: `nil`, a `PASID?`. The kernel writes it `IOMMU_NO_PASID` (0) and marks a missing
/// or exhausted PASID `IOMMU_PASID_INVALID`; neither is a value of this type. A hardware
/// model may still use its own encoding internally (VT-d's `RID_PASID` table index), but
/// no public call takes or returns one.
///
/// An `@frozen` wrapper around the number, as swift-system's `FileDescriptor` wraps a
/// `CInt`: `let pasid: PASID = 5`; `rawValue` is the number a PASID-table index or a
/// uAPI field holds.
@frozen
public struct PASID: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible,
    ExpressibleByIntegerLiteral {
    /// The PASID as the TLP prefix and the uAPI carry it (20 bits on PCIe).
    public var rawValue: UInt32

    /// The PASID whose number is `rawValue`.
    @inlinable @inline(__always)
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// A PASID written as an integer literal.
    @inlinable @inline(__always)
    public init(integerLiteral value: UInt32) { rawValue = value }

    /// Orders PASIDs by number.
    @inlinable @inline(__always)
    public static func < (lhs: PASID, rhs: PASID) -> Bool { lhs.rawValue < rhs.rawValue }

    /// The number in decimal, as the kernel prints a PASID.
    public var description: String { String(rawValue) }
}
