/// A 64-bit address of the simulated machine with its meaning in its type: an ``IOVA``
/// (what a device puts on the bus) or a ``PhysicalAddress`` (where the bytes are).
///
/// Both are `@frozen` wrappers around a `UInt64`, as swift-system's `FileDescriptor`
/// wraps a `CInt`: no storage or cost beyond the integer, but an IOVA passed where a
/// physical address is expected is a compile error. The raw value is one
/// `rawValue` away for code that talks to hardware formats and the uAPI byte images.
///
/// The arithmetic is what address code needs and no more: offset by a byte count
/// (`+`, `-`, `&+`, ``addingReportingOverflow(_:)``), the distance between two addresses
/// (``distance(to:)``, a byte count), and alignment (``isAligned(to:)``,
/// ``alignedDown(to:)``, ``offset(within:)``). `+` and `-` trap on overflow as integer
/// arithmetic does: on anything a caller controls, use ``addingReportingOverflow(_:)``
/// first. Alignments are powers of two.
public protocol MachineAddress: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible,
    ExpressibleByIntegerLiteral where RawValue == UInt64, IntegerLiteralType == UInt64 {
    /// The address whose raw value is `rawValue`.
    init(rawValue: UInt64)
}

extension MachineAddress {
    /// An address written as an integer literal (`let iova: IOVA = 0x1000`).
    @inlinable @inline(__always)
    public init(integerLiteral value: UInt64) { self.init(rawValue: value) }

    /// Orders addresses by their raw value.
    @inlinable @inline(__always)
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }

    /// The address in hexadecimal, as the kernel prints one (`0x1000`).
    public var description: String { "0x" + String(rawValue, radix: 16) }

    /// The address `bytes` further on, and whether that wrapped past 2^64 (the
    /// `check_add_overflow` every range a caller supplies goes through).
    @inlinable @inline(__always)
    public func addingReportingOverflow(_ bytes: UInt64) -> (partialValue: Self, overflow: Bool) {
        let (sum, overflow) = rawValue.addingReportingOverflow(bytes)
        return (Self(rawValue: sum), overflow)
    }

    /// The bytes from this address up to `end`, which must not be below it (traps
    /// otherwise, as integer `-` does).
    @inlinable @inline(__always)
    public func distance(to end: Self) -> UInt64 { end.rawValue - rawValue }

    /// Whether the address is a multiple of `alignment` (a power of two).
    @inlinable @inline(__always)
    public func isAligned(to alignment: UInt64) -> Bool { rawValue & (alignment &- 1) == 0 }

    /// The address rounded down to a multiple of `alignment` (a power of two): the start
    /// of the page of that size holding it.
    @inlinable @inline(__always)
    public func alignedDown(to alignment: UInt64) -> Self { Self(rawValue: rawValue & ~(alignment &- 1)) }

    /// The byte offset of the address within its `alignment`-sized page (a power of two).
    @inlinable @inline(__always)
    public func offset(within alignment: UInt64) -> UInt64 { rawValue & (alignment &- 1) }
}
