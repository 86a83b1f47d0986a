// Generated from the field tables of include/uapi/linux/iommufd.h (explicit offsets,
// little-endian); see UAPIBytes.swift for the encoding rules.

/// `struct iommu_destroy` (8 bytes): argument of `IOMMU_DESTROY`.
public struct IOMMUDestroy: UAPIStruct, Hashable {
    /// `sizeof(struct iommu_destroy)`.
    public static let size = 8
    /// `size` (u32 @0): the caller's structure size, for extensibility
    public var size: UInt32 = UInt32(8)
    /// `id` (u32 @4): the object to destroy
    public var id: UInt32
    /// A value with every field given (zero by default); `size` is `sizeof`.
    public init(id: UInt32 = 0) {
        self.id = id
    }
    /// Decodes the fields at their kernel offsets.
    public init(_ b: UAPIBytes) {
        size = b.u32(0)
        id = b.u32(4)
    }
    /// Writes the fields at their kernel offsets.
    public func encode(into b: inout UAPIBytes) {
        b.setU32(0, size)
        b.setU32(4, id)
    }
}
/// `struct iommu_ioas_alloc` (12 bytes): argument of `IOMMU_IOAS_ALLOC`.
public struct IOMMUIOASAlloc: UAPIStruct, Hashable {
    /// `sizeof(struct iommu_ioas_alloc)`.
    public static let size = 12
    /// `size` (u32 @0): the caller's structure size, for extensibility
    public var size: UInt32 = UInt32(12)
    /// `flags` (u32 @4): must be 0
    public var flags: UInt32
    /// `out_ioas_id` (u32 @8): output: the new IOAS id
    public var outIoasId: UInt32
    /// A value with every field given (zero by default); `size` is `sizeof`.
    public init(flags: UInt32 = 0, outIoasId: UInt32 = 0) {
        self.flags = flags
        self.outIoasId = outIoasId
    }
    /// Decodes the fields at their kernel offsets.
    public init(_ b: UAPIBytes) {
        size = b.u32(0)
        flags = b.u32(4)
        outIoasId = b.u32(8)
    }
    /// Writes the fields at their kernel offsets.
    public func encode(into b: inout UAPIBytes) {
        b.setU32(0, size)
        b.setU32(4, flags)
        b.setU32(8, outIoasId)
    }
}
/// `struct iommu_ioas_allow_iovas` (24 bytes): argument of `IOMMU_IOAS_ALLOW_IOVAS`.
public struct IOMMUIOASAllowIOVAs: UAPIStruct, Hashable {
    /// `sizeof(struct iommu_ioas_allow_iovas)`.
    public static let size = 24
    /// `size` (u32 @0): the caller's structure size, for extensibility
    public var size: UInt32 = UInt32(24)
    /// `ioas_id` (u32 @4): the IOAS
    public var ioasId: UInt32
    /// `num_iovas` (u32 @8): number of `iommu_iova_range` elements
    public var numIovas: UInt32
    /// `__reserved` (u32 @12): must be 0
    public var reserved: UInt32
    /// `allowed_iovas` (u64 @16): user pointer to the array
    public var allowedIovas: UInt64
    /// A value with every field given (zero by default); `size` is `sizeof`.
    public init(ioasId: UInt32 = 0, numIovas: UInt32 = 0, reserved: UInt32 = 0, allowedIovas: UInt64 = 0) {
        self.ioasId = ioasId
        self.numIovas = numIovas
        self.reserved = reserved
        self.allowedIovas = allowedIovas
    }
    /// Decodes the fields at their kernel offsets.
    public init(_ b: UAPIBytes) {
        size = b.u32(0)
        ioasId = b.u32(4)
        numIovas = b.u32(8)
        reserved = b.u32(12)
        allowedIovas = b.u64(16)
    }
    /// Writes the fields at their kernel offsets.
    public func encode(into b: inout UAPIBytes) {
        b.setU32(0, size)
        b.setU32(4, ioasId)
        b.setU32(8, numIovas)
        b.setU32(12, reserved)
        b.setU64(16, allowedIovas)
    }
}
/// `struct iommu_ioas_copy` (40 bytes): argument of `IOMMU_IOAS_COPY`.
public struct IOMMUIOASCopy: UAPIStruct, Hashable {
    /// `sizeof(struct iommu_ioas_copy)`.
    public static let size = 40
    /// `size` (u32 @0): the caller's structure size, for extensibility
    public var size: UInt32 = UInt32(40)
    /// `flags` (u32 @4): `IOMMU_IOAS_MAP_*`
    public var flags: UInt32
    /// `dst_ioas_id` (u32 @8): destination IOAS
    public var dstIoasId: UInt32
    /// `src_ioas_id` (u32 @12): source IOAS
    public var srcIoasId: UInt32
    /// `length` (u64 @16): bytes to copy
    public var length: UInt64
    /// `dst_iova` (u64 @24): destination IOVA (input with FIXED_IOVA; output)
    public var dstIova: UInt64
    /// `src_iova` (u64 @32): source IOVA
    public var srcIova: UInt64
    /// A value with every field given (zero by default); `size` is `sizeof`.
    public init(flags: UInt32 = 0, dstIoasId: UInt32 = 0, srcIoasId: UInt32 = 0, length: UInt64 = 0, dstIova: UInt64 = 0, srcIova: UInt64 = 0) {
        self.flags = flags
        self.dstIoasId = dstIoasId
        self.srcIoasId = srcIoasId
        self.length = length
        self.dstIova = dstIova
        self.srcIova = srcIova
    }
    /// Decodes the fields at their kernel offsets.
    public init(_ b: UAPIBytes) {
        size = b.u32(0)
        flags = b.u32(4)
        dstIoasId = b.u32(8)
        srcIoasId = b.u32(12)
        length = b.u64(16)
        dstIova = b.u64(24)
        srcIova = b.u64(32)
    }
    /// Writes the fields at their kernel offsets.
    public func encode(into b: inout UAPIBytes) {
        b.setU32(0, size)
        b.setU32(4, flags)
        b.setU32(8, dstIoasId)
        b.setU32(12, srcIoasId)
        b.setU64(16, length)
        b.setU64(24, dstIova)
        b.setU64(32, srcIova)
    }
}
/// `struct iommu_ioas_iova_ranges` (32 bytes): argument of `IOMMU_IOAS_IOVA_RANGES`.
public struct IOMMUIOASIOVARanges: UAPIStruct, Hashable {
    /// `sizeof(struct iommu_ioas_iova_ranges)`.
    public static let size = 32
    /// `size` (u32 @0): the caller's structure size, for extensibility
    public var size: UInt32 = UInt32(32)
    /// `ioas_id` (u32 @4): the IOAS
    public var ioasId: UInt32
    /// `num_iovas` (u32 @8): in: array capacity; out: total ranges
    public var numIovas: UInt32
    /// `__reserved` (u32 @12): must be 0
    public var reserved: UInt32
    /// `allowed_iovas` (u64 @16): user pointer to the output array
    public var allowedIovas: UInt64
    /// `out_iova_alignment` (u64 @24): output: the IOAS IOVA alignment
    public var outIovaAlignment: UInt64
    /// A value with every field given (zero by default); `size` is `sizeof`.
    public init(ioasId: UInt32 = 0, numIovas: UInt32 = 0, reserved: UInt32 = 0, allowedIovas: UInt64 = 0, outIovaAlignment: UInt64 = 0) {
        self.ioasId = ioasId
        self.numIovas = numIovas
        self.reserved = reserved
        self.allowedIovas = allowedIovas
        self.outIovaAlignment = outIovaAlignment
    }
    /// Decodes the fields at their kernel offsets.
    public init(_ b: UAPIBytes) {
        size = b.u32(0)
        ioasId = b.u32(4)
        numIovas = b.u32(8)
        reserved = b.u32(12)
        allowedIovas = b.u64(16)
        outIovaAlignment = b.u64(24)
    }
    /// Writes the fields at their kernel offsets.
    public func encode(into b: inout UAPIBytes) {
        b.setU32(0, size)
        b.setU32(4, ioasId)
        b.setU32(8, numIovas)
        b.setU32(12, reserved)
        b.setU64(16, allowedIovas)
        b.setU64(24, outIovaAlignment)
    }
}
/// `struct iommu_ioas_map_file` (40 bytes): argument of `IOMMU_IOAS_MAP_FILE`. Laid out
/// as `struct iommu_ioas_map` with the descriptor where MAP has `__reserved` and a file
/// offset where MAP has the user address.
public struct IOMMUIOASMapFile: UAPIStruct, Hashable {
    /// `sizeof(struct iommu_ioas_map_file)`.
    public static let size = 40
    /// `size` (u32 @0): the caller's structure size, for extensibility
    public var size: UInt32 = UInt32(40)
    /// `flags` (u32 @4): `IOMMU_IOAS_MAP_FIXED_IOVA|WRITEABLE|READABLE`
    public var flags: UInt32
    /// `ioas_id` (u32 @8): the IOAS
    public var ioasId: UInt32
    /// `fd` (s32 @12): the memfd, a descriptor of the calling process
    public var fd: Int32
    /// `start` (u64 @16): byte offset in the file
    public var start: UInt64
    /// `length` (u64 @24): bytes
    public var length: UInt64
    /// `iova` (u64 @32): IOVA (input with FIXED_IOVA; output)
    public var iova: UInt64
    /// A value with every field given (zero by default); `size` is `sizeof`.
    public init(flags: UInt32 = 0, ioasId: UInt32 = 0, fd: Int32 = 0, start: UInt64 = 0, length: UInt64 = 0, iova: UInt64 = 0) {
        self.flags = flags
        self.ioasId = ioasId
        self.fd = fd
        self.start = start
        self.length = length
        self.iova = iova
    }
    /// Decodes the fields at their kernel offsets.
    public init(_ b: UAPIBytes) {
        size = b.u32(0)
        flags = b.u32(4)
        ioasId = b.u32(8)
        fd = Int32(bitPattern: b.u32(12))
        start = b.u64(16)
        length = b.u64(24)
        iova = b.u64(32)
    }
    /// Writes the fields at their kernel offsets.
    public func encode(into b: inout UAPIBytes) {
        b.setU32(0, size)
        b.setU32(4, flags)
        b.setU32(8, ioasId)
        b.setU32(12, UInt32(bitPattern: fd))
        b.setU64(16, start)
        b.setU64(24, length)
        b.setU64(32, iova)
    }
}
/// `struct iommu_ioas_map` (40 bytes): argument of `IOMMU_IOAS_MAP`.
public struct IOMMUIOASMap: UAPIStruct, Hashable {
    /// `sizeof(struct iommu_ioas_map)`.
    public static let size = 40
    /// `size` (u32 @0): the caller's structure size, for extensibility
    public var size: UInt32 = UInt32(40)
    /// `flags` (u32 @4): `IOMMU_IOAS_MAP_FIXED_IOVA|WRITEABLE|READABLE`
    public var flags: UInt32
    /// `ioas_id` (u32 @8): the IOAS
    public var ioasId: UInt32
    /// `__reserved` (u32 @12): must be 0
    public var reserved: UInt32
    /// `user_va` (u64 @16): user address of the memory
    public var userVa: UInt64
    /// `length` (u64 @24): bytes
    public var length: UInt64
    /// `iova` (u64 @32): IOVA (input with FIXED_IOVA; output)
    public var iova: UInt64
    /// A value with every field given (zero by default); `size` is `sizeof`.
    public init(flags: UInt32 = 0, ioasId: UInt32 = 0, reserved: UInt32 = 0, userVa: UInt64 = 0, length: UInt64 = 0, iova: UInt64 = 0) {
        self.flags = flags
        self.ioasId = ioasId
        self.reserved = reserved
        self.userVa = userVa
        self.length = length
        self.iova = iova
    }
    /// Decodes the fields at their kernel offsets.
    public init(_ b: UAPIBytes) {
        size = b.u32(0)
        flags = b.u32(4)
        ioasId = b.u32(8)
        reserved = b.u32(12)
        userVa = b.u64(16)
        length = b.u64(24)
        iova = b.u64(32)
    }
    /// Writes the fields at their kernel offsets.
    public func encode(into b: inout UAPIBytes) {
        b.setU32(0, size)
        b.setU32(4, flags)
        b.setU32(8, ioasId)
        b.setU32(12, reserved)
        b.setU64(16, userVa)
        b.setU64(24, length)
        b.setU64(32, iova)
    }
}
/// `struct iommu_ioas_unmap` (24 bytes): argument of `IOMMU_IOAS_UNMAP`.
public struct IOMMUIOASUnmap: UAPIStruct, Hashable {
    /// `sizeof(struct iommu_ioas_unmap)`.
    public static let size = 24
    /// `size` (u32 @0): the caller's structure size, for extensibility
    public var size: UInt32 = UInt32(24)
    /// `ioas_id` (u32 @4): the IOAS
    public var ioasId: UInt32
    /// `iova` (u64 @8): first IOVA
    public var iova: UInt64
    /// `length` (u64 @16): in: bytes; out: bytes unmapped
    public var length: UInt64
    /// A value with every field given (zero by default); `size` is `sizeof`.
    public init(ioasId: UInt32 = 0, iova: UInt64 = 0, length: UInt64 = 0) {
        self.ioasId = ioasId
        self.iova = iova
        self.length = length
    }
    /// Decodes the fields at their kernel offsets.
    public init(_ b: UAPIBytes) {
        size = b.u32(0)
        ioasId = b.u32(4)
        iova = b.u64(8)
        length = b.u64(16)
    }
    /// Writes the fields at their kernel offsets.
    public func encode(into b: inout UAPIBytes) {
        b.setU32(0, size)
        b.setU32(4, ioasId)
        b.setU64(8, iova)
        b.setU64(16, length)
    }
}
/// `struct iommu_option` (24 bytes): argument of `IOMMU_OPTION`.
public struct IOMMUOption: UAPIStruct, Hashable {
    /// `sizeof(struct iommu_option)`.
    public static let size = 24
    /// `size` (u32 @0): the caller's structure size, for extensibility
    public var size: UInt32 = UInt32(24)
    /// `option_id` (u32 @4): `IOMMU_OPTION_RLIMIT_MODE` (0) or `IOMMU_OPTION_HUGE_PAGES` (1)
    public var optionId: UInt32
    /// `op` (u16 @8): `IOMMU_OPTION_OP_SET` (0) or `_GET` (1)
    public var op: UInt16
    /// `__reserved` (u16 @10): must be 0
    public var reserved: UInt16
    /// `object_id` (u32 @12): the object for per-object options
    public var objectId: UInt32
    /// `val64` (u64 @16): in for SET; out for GET and SET
    public var val64: UInt64
    /// A value with every field given (zero by default); `size` is `sizeof`.
    public init(optionId: UInt32 = 0, op: UInt16 = 0, reserved: UInt16 = 0, objectId: UInt32 = 0, val64: UInt64 = 0) {
        self.optionId = optionId
        self.op = op
        self.reserved = reserved
        self.objectId = objectId
        self.val64 = val64
    }
    /// Decodes the fields at their kernel offsets.
    public init(_ b: UAPIBytes) {
        size = b.u32(0)
        optionId = b.u32(4)
        op = b.u16(8)
        reserved = b.u16(10)
        objectId = b.u32(12)
        val64 = b.u64(16)
    }
    /// Writes the fields at their kernel offsets.
    public func encode(into b: inout UAPIBytes) {
        b.setU32(0, size)
        b.setU32(4, optionId)
        b.setU16(8, op)
        b.setU16(10, reserved)
        b.setU32(12, objectId)
        b.setU64(16, val64)
    }
}
/// `struct iommu_vfio_ioas` (12 bytes): argument of `IOMMU_VFIO_IOAS`.
public struct IOMMUVFIOIOAS: UAPIStruct, Hashable {
    /// `sizeof(struct iommu_vfio_ioas)`.
    public static let size = 12
    /// `size` (u32 @0): the caller's structure size, for extensibility
    public var size: UInt32 = UInt32(12)
    /// `ioas_id` (u32 @4): in for SET; out for GET
    public var ioasId: UInt32
    /// `op` (u16 @8): `IOMMU_VFIO_IOAS_GET` (0), `_SET` (1), `_CLEAR` (2)
    public var op: UInt16
    /// `__reserved` (u16 @10): must be 0
    public var reserved: UInt16
    /// A value with every field given (zero by default); `size` is `sizeof`.
    public init(ioasId: UInt32 = 0, op: UInt16 = 0, reserved: UInt16 = 0) {
        self.ioasId = ioasId
        self.op = op
        self.reserved = reserved
    }
    /// Decodes the fields at their kernel offsets.
    public init(_ b: UAPIBytes) {
        size = b.u32(0)
        ioasId = b.u32(4)
        op = b.u16(8)
        reserved = b.u16(10)
    }
    /// Writes the fields at their kernel offsets.
    public func encode(into b: inout UAPIBytes) {
        b.setU32(0, size)
        b.setU32(4, ioasId)
        b.setU16(8, op)
        b.setU16(10, reserved)
    }
}
/// `struct iommu_ioas_change_process` (8 bytes): argument of `IOMMU_IOAS_CHANGE_PROCESS`.
public struct IOMMUIOASChangeProcess: UAPIStruct, Hashable {
    /// `sizeof(struct iommu_ioas_change_process)`.
    public static let size = 8
    /// `size` (u32 @0): the caller's structure size, for extensibility
    public var size: UInt32 = UInt32(8)
    /// `__reserved` (u32 @4): must be 0
    public var reserved: UInt32
    /// A value with every field given (zero by default); `size` is `sizeof`.
    public init(reserved: UInt32 = 0) {
        self.reserved = reserved
    }
    /// Decodes the fields at their kernel offsets.
    public init(_ b: UAPIBytes) {
        size = b.u32(0)
        reserved = b.u32(4)
    }
    /// Writes the fields at their kernel offsets.
    public func encode(into b: inout UAPIBytes) {
        b.setU32(0, size)
        b.setU32(4, reserved)
    }
}
