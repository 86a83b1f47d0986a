import IOMMUCore

/// A little-endian byte image of a C uAPI structure, read and written at byte offsets.
/// This is how every `struct iommu_*` of `include/uapi/linux/iommufd.h` crosses the
/// model: never through Swift struct layout, always as the bytes a C caller passes. A
/// structure's fields are placed by its field table (``UAPIRecord``); the accessors here
/// are for the odd loose integer (a size word read before the structure is known).
public struct UAPIBytes: Hashable, Sendable {
    /// The raw bytes.
    public var bytes: [UInt8]

    /// `count` zero bytes.
    @inlinable public init(count: Int) { bytes = [UInt8](repeating: 0, count: count) }
    /// Wraps existing bytes.
    @inlinable public init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// Number of bytes.
    @inlinable public var count: Int { bytes.count }

    /// The unsigned little-endian integer of `width` bytes at `offset` (0 past the end).
    @inlinable func load(_ offset: Int, _ width: Int) -> UInt64 {
        // Every field of every decode comes here: a field wholly inside the image (the
        // usual case) is one unaligned load rather than a byte loop with bounds checks.
        if offset >= 0, offset <= bytes.count - width {
            return bytes.withUnsafeBytes { raw -> UInt64 in
                switch width {
                case 8: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
                case 4: UInt64(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
                case 2: UInt64(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
                default: (0..<width).reduce(0) { $0 | UInt64(raw[offset + $1]) << (8 * UInt64($1)) }
                }
            }
        }
        var v: UInt64 = 0
        for i in 0..<width where offset + i < bytes.count { v |= UInt64(bytes[offset + i]) << (8 * UInt64(i)) }
        return v
    }

    @inlinable mutating func store(_ offset: Int, _ width: Int, _ value: UInt64) {
        // As in load: one unaligned store for a field wholly inside the image.
        if offset >= 0, offset <= bytes.count - width {
            bytes.withUnsafeMutableBytes { raw in
                switch width {
                case 8: raw.storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt64.self)
                case 4: raw.storeBytes(of: UInt32(truncatingIfNeeded: value).littleEndian, toByteOffset: offset, as: UInt32.self)
                case 2: raw.storeBytes(of: UInt16(truncatingIfNeeded: value).littleEndian, toByteOffset: offset, as: UInt16.self)
                default: for i in 0..<width { raw[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
                }
            }
            return
        }
        for i in 0..<width where offset + i < bytes.count { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
    }

    // The accessors are inlinable: the codecs that use them (iommufd's, the drivers') are
    // other modules, and every ioctl decodes and encodes its structure through them.

    /// `__u8` at `offset`.
    @inlinable public func u8(_ offset: Int) -> UInt8 { UInt8(load(offset, 1)) }
    /// `__u16` at `offset`.
    @inlinable public func u16(_ offset: Int) -> UInt16 { UInt16(load(offset, 2)) }
    /// `__u32` at `offset`.
    @inlinable public func u32(_ offset: Int) -> UInt32 { UInt32(load(offset, 4)) }
    /// `__s32` at `offset`.
    @inlinable public func s32(_ offset: Int) -> Int32 { Int32(bitPattern: UInt32(load(offset, 4))) }
    /// `__aligned_u64` at `offset`.
    @inlinable public func u64(_ offset: Int) -> UInt64 { load(offset, 8) }

    /// Sets the `__u8` at `offset`.
    @inlinable public mutating func setU8(_ offset: Int, _ v: UInt8) { store(offset, 1, UInt64(v)) }
    /// Sets the `__u16` at `offset`.
    @inlinable public mutating func setU16(_ offset: Int, _ v: UInt16) { store(offset, 2, UInt64(v)) }
    /// Sets the `__u32` at `offset`.
    @inlinable public mutating func setU32(_ offset: Int, _ v: UInt32) { store(offset, 4, UInt64(v)) }
    /// Sets the `__s32` at `offset`.
    @inlinable public mutating func setS32(_ offset: Int, _ v: Int32) { store(offset, 4, UInt64(UInt32(bitPattern: v))) }
    /// Sets the `__aligned_u64` at `offset`.
    @inlinable public mutating func setU64(_ offset: Int, _ v: UInt64) { store(offset, 8, v) }
}
