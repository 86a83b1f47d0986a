// The IOAS, option and VFIO-compatibility argument structures of
// `include/uapi/linux/iommufd.h`, each declared by its field table (UAPIRecord.swift).

/// `struct iommu_destroy`: argument of `IOMMU_DESTROY`.
public struct IOMMUDestroy: UAPIStruct, Hashable {
    /// The C name: `struct iommu_destroy`.
    public static let cName = "iommu_destroy"
    /// `sizeof(struct iommu_destroy)`: 8 bytes.
    public static let size = 8
    /// The fields of `struct iommu_destroy` in layout order: C name, byte offset, storage.
    @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
        f.field("size", 0, &v.size)
        f.field("id", 4, &v.id)
    }

    /// `size`: the caller's structure size, for extensibility.
    public var size: UInt32 = UInt32(Self.size)
    /// `id`: the object to destroy.
    public var id: UInt32 = 0

    /// An all-zero `struct iommu_destroy`, but `size`, which is `sizeof`.
    public init() {}
    /// A value with the given fields, zero by default; `size` is `sizeof`.
    public init(id: UInt32 = 0) {
        self.id = id
    }
}

/// `struct iommu_ioas_alloc`: argument of `IOMMU_IOAS_ALLOC`.
public struct IOMMUIOASAlloc: UAPIStruct, Hashable {
    /// The C name: `struct iommu_ioas_alloc`.
    public static let cName = "iommu_ioas_alloc"
    /// `sizeof(struct iommu_ioas_alloc)`: 12 bytes.
    public static let size = 12
    /// The fields of `struct iommu_ioas_alloc` in layout order: C name, byte offset, storage.
    @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
        f.field("size", 0, &v.size)
        f.field("flags", 4, &v.flags)
        f.field("out_ioas_id", 8, &v.outIoasId)
    }

    /// `size`: the caller's structure size, for extensibility.
    public var size: UInt32 = UInt32(Self.size)
    /// `flags`: must be 0.
    public var flags: UInt32 = 0
    /// `out_ioas_id`: output: the new IOAS id.
    public var outIoasId: UInt32 = 0

    /// An all-zero `struct iommu_ioas_alloc`, but `size`, which is `sizeof`.
    public init() {}
    /// A value with the given fields, zero by default; `size` is `sizeof`.
    public init(flags: UInt32 = 0, outIoasId: UInt32 = 0) {
        self.flags = flags
        self.outIoasId = outIoasId
    }
}

/// `struct iommu_ioas_allow_iovas`: argument of `IOMMU_IOAS_ALLOW_IOVAS`.
public struct IOMMUIOASAllowIOVAs: UAPIStruct, Hashable {
    /// The C name: `struct iommu_ioas_allow_iovas`.
    public static let cName = "iommu_ioas_allow_iovas"
    /// `sizeof(struct iommu_ioas_allow_iovas)`: 24 bytes.
    public static let size = 24
    /// The fields of `struct iommu_ioas_allow_iovas` in layout order: C name, byte offset, storage.
    @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
        f.field("size", 0, &v.size)
        f.field("ioas_id", 4, &v.ioasId)
        f.field("num_iovas", 8, &v.numIovas)
        f.field("__reserved", 12, &v.reserved)
        f.field("allowed_iovas", 16, &v.allowedIovas)
    }

    /// `size`: the caller's structure size, for extensibility.
    public var size: UInt32 = UInt32(Self.size)
    /// `ioas_id`: the IOAS.
    public var ioasId: UInt32 = 0
    /// `num_iovas`: number of `iommu_iova_range` elements.
    public var numIovas: UInt32 = 0
    /// `__reserved`: must be 0.
    public var reserved: UInt32 = 0
    /// `allowed_iovas`: user pointer to the array.
    public var allowedIovas: UInt64 = 0

    /// An all-zero `struct iommu_ioas_allow_iovas`, but `size`, which is `sizeof`.
    public init() {}
    /// A value with the given fields, zero by default; `size` is `sizeof`.
    public init(ioasId: UInt32 = 0, numIovas: UInt32 = 0, reserved: UInt32 = 0, allowedIovas: UInt64 = 0) {
        self.ioasId = ioasId
        self.numIovas = numIovas
        self.reserved = reserved
        self.allowedIovas = allowedIovas
    }
}

/// `struct iommu_ioas_copy`: argument of `IOMMU_IOAS_COPY`.
public struct IOMMUIOASCopy: UAPIStruct, Hashable {
    /// The C name: `struct iommu_ioas_copy`.
    public static let cName = "iommu_ioas_copy"
    /// `sizeof(struct iommu_ioas_copy)`: 40 bytes.
    public static let size = 40
    /// The fields of `struct iommu_ioas_copy` in layout order: C name, byte offset, storage.
    @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
        f.field("size", 0, &v.size)
        f.field("flags", 4, &v.flags)
        f.field("dst_ioas_id", 8, &v.dstIoasId)
        f.field("src_ioas_id", 12, &v.srcIoasId)
        f.field("length", 16, &v.length)
        f.field("dst_iova", 24, &v.dstIova)
        f.field("src_iova", 32, &v.srcIova)
    }

    /// `size`: the caller's structure size, for extensibility.
    public var size: UInt32 = UInt32(Self.size)
    /// `flags`: `IOMMU_IOAS_MAP_*`.
    public var flags: UInt32 = 0
    /// `dst_ioas_id`: destination IOAS.
    public var dstIoasId: UInt32 = 0
    /// `src_ioas_id`: source IOAS.
    public var srcIoasId: UInt32 = 0
    /// `length`: bytes to copy.
    public var length: UInt64 = 0
    /// `dst_iova`: destination IOVA (input with FIXED_IOVA; output).
    public var dstIova: UInt64 = 0
    /// `src_iova`: source IOVA.
    public var srcIova: UInt64 = 0

    /// An all-zero `struct iommu_ioas_copy`, but `size`, which is `sizeof`.
    public init() {}
    /// A value with the given fields, zero by default; `size` is `sizeof`.
    public init(flags: UInt32 = 0, dstIoasId: UInt32 = 0, srcIoasId: UInt32 = 0, length: UInt64 = 0, dstIova: UInt64 = 0, srcIova: UInt64 = 0) {
        self.flags = flags
        self.dstIoasId = dstIoasId
        self.srcIoasId = srcIoasId
        self.length = length
        self.dstIova = dstIova
        self.srcIova = srcIova
    }
}

/// `struct iommu_ioas_iova_ranges`: argument of `IOMMU_IOAS_IOVA_RANGES`.
public struct IOMMUIOASIOVARanges: UAPIStruct, Hashable {
    /// The C name: `struct iommu_ioas_iova_ranges`.
    public static let cName = "iommu_ioas_iova_ranges"
    /// `sizeof(struct iommu_ioas_iova_ranges)`: 32 bytes.
    public static let size = 32
    /// The fields of `struct iommu_ioas_iova_ranges` in layout order: C name, byte offset, storage.
    @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
        f.field("size", 0, &v.size)
        f.field("ioas_id", 4, &v.ioasId)
        f.field("num_iovas", 8, &v.numIovas)
        f.field("__reserved", 12, &v.reserved)
        f.field("allowed_iovas", 16, &v.allowedIovas)
        f.field("out_iova_alignment", 24, &v.outIovaAlignment)
    }

    /// `size`: the caller's structure size, for extensibility.
    public var size: UInt32 = UInt32(Self.size)
    /// `ioas_id`: the IOAS.
    public var ioasId: UInt32 = 0
    /// `num_iovas`: in: array capacity; out: total ranges.
    public var numIovas: UInt32 = 0
    /// `__reserved`: must be 0.
    public var reserved: UInt32 = 0
    /// `allowed_iovas`: user pointer to the output array.
    public var allowedIovas: UInt64 = 0
    /// `out_iova_alignment`: output: the IOAS IOVA alignment.
    public var outIovaAlignment: UInt64 = 0

    /// An all-zero `struct iommu_ioas_iova_ranges`, but `size`, which is `sizeof`.
    public init() {}
    /// A value with the given fields, zero by default; `size` is `sizeof`.
    public init(ioasId: UInt32 = 0, numIovas: UInt32 = 0, reserved: UInt32 = 0, allowedIovas: UInt64 = 0, outIovaAlignment: UInt64 = 0) {
        self.ioasId = ioasId
        self.numIovas = numIovas
        self.reserved = reserved
        self.allowedIovas = allowedIovas
        self.outIovaAlignment = outIovaAlignment
    }
}

/// `struct iommu_ioas_map_file`: argument of `IOMMU_IOAS_MAP_FILE`. Laid out
/// as `struct iommu_ioas_map` with the descriptor where MAP has `__reserved` and a file
/// offset where MAP has the user address.
public struct IOMMUIOASMapFile: UAPIStruct, Hashable {
    /// The C name: `struct iommu_ioas_map_file`.
    public static let cName = "iommu_ioas_map_file"
    /// `sizeof(struct iommu_ioas_map_file)`: 40 bytes.
    public static let size = 40
    /// The fields of `struct iommu_ioas_map_file` in layout order: C name, byte offset, storage.
    @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
        f.field("size", 0, &v.size)
        f.field("flags", 4, &v.flags)
        f.field("ioas_id", 8, &v.ioasId)
        f.field("fd", 12, &v.fd)
        f.field("start", 16, &v.start)
        f.field("length", 24, &v.length)
        f.field("iova", 32, &v.iova)
    }

    /// `size`: the caller's structure size, for extensibility.
    public var size: UInt32 = UInt32(Self.size)
    /// `flags`: `IOMMU_IOAS_MAP_FIXED_IOVA|WRITEABLE|READABLE`.
    public var flags: UInt32 = 0
    /// `ioas_id`: the IOAS.
    public var ioasId: UInt32 = 0
    /// `fd`: the memfd, a descriptor of the calling process.
    public var fd: Int32 = 0
    /// `start`: byte offset in the file.
    public var start: UInt64 = 0
    /// `length`: bytes.
    public var length: UInt64 = 0
    /// `iova`: IOVA (input with FIXED_IOVA; output).
    public var iova: UInt64 = 0

    /// An all-zero `struct iommu_ioas_map_file`, but `size`, which is `sizeof`.
    public init() {}
    /// A value with the given fields, zero by default; `size` is `sizeof`.
    public init(flags: UInt32 = 0, ioasId: UInt32 = 0, fd: Int32 = 0, start: UInt64 = 0, length: UInt64 = 0, iova: UInt64 = 0) {
        self.flags = flags
        self.ioasId = ioasId
        self.fd = fd
        self.start = start
        self.length = length
        self.iova = iova
    }
}

/// `struct iommu_ioas_map`: argument of `IOMMU_IOAS_MAP`.
public struct IOMMUIOASMap: UAPIStruct, Hashable {
    /// The C name: `struct iommu_ioas_map`.
    public static let cName = "iommu_ioas_map"
    /// `sizeof(struct iommu_ioas_map)`: 40 bytes.
    public static let size = 40
    /// The fields of `struct iommu_ioas_map` in layout order: C name, byte offset, storage.
    @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
        f.field("size", 0, &v.size)
        f.field("flags", 4, &v.flags)
        f.field("ioas_id", 8, &v.ioasId)
        f.field("__reserved", 12, &v.reserved)
        f.field("user_va", 16, &v.userVa)
        f.field("length", 24, &v.length)
        f.field("iova", 32, &v.iova)
    }

    /// `size`: the caller's structure size, for extensibility.
    public var size: UInt32 = UInt32(Self.size)
    /// `flags`: `IOMMU_IOAS_MAP_FIXED_IOVA|WRITEABLE|READABLE`.
    public var flags: UInt32 = 0
    /// `ioas_id`: the IOAS.
    public var ioasId: UInt32 = 0
    /// `__reserved`: must be 0.
    public var reserved: UInt32 = 0
    /// `user_va`: user address of the memory.
    public var userVa: UInt64 = 0
    /// `length`: bytes.
    public var length: UInt64 = 0
    /// `iova`: IOVA (input with FIXED_IOVA; output).
    public var iova: UInt64 = 0

    /// An all-zero `struct iommu_ioas_map`, but `size`, which is `sizeof`.
    public init() {}
    /// A value with the given fields, zero by default; `size` is `sizeof`.
    public init(flags: UInt32 = 0, ioasId: UInt32 = 0, reserved: UInt32 = 0, userVa: UInt64 = 0, length: UInt64 = 0, iova: UInt64 = 0) {
        self.flags = flags
        self.ioasId = ioasId
        self.reserved = reserved
        self.userVa = userVa
        self.length = length
        self.iova = iova
    }
}

/// `struct iommu_ioas_unmap`: argument of `IOMMU_IOAS_UNMAP`.
public struct IOMMUIOASUnmap: UAPIStruct, Hashable {
    /// The C name: `struct iommu_ioas_unmap`.
    public static let cName = "iommu_ioas_unmap"
    /// `sizeof(struct iommu_ioas_unmap)`: 24 bytes.
    public static let size = 24
    /// The fields of `struct iommu_ioas_unmap` in layout order: C name, byte offset, storage.
    @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
        f.field("size", 0, &v.size)
        f.field("ioas_id", 4, &v.ioasId)
        f.field("iova", 8, &v.iova)
        f.field("length", 16, &v.length)
    }

    /// `size`: the caller's structure size, for extensibility.
    public var size: UInt32 = UInt32(Self.size)
    /// `ioas_id`: the IOAS.
    public var ioasId: UInt32 = 0
    /// `iova`: first IOVA.
    public var iova: UInt64 = 0
    /// `length`: in: bytes; out: bytes unmapped.
    public var length: UInt64 = 0

    /// An all-zero `struct iommu_ioas_unmap`, but `size`, which is `sizeof`.
    public init() {}
    /// A value with the given fields, zero by default; `size` is `sizeof`.
    public init(ioasId: UInt32 = 0, iova: UInt64 = 0, length: UInt64 = 0) {
        self.ioasId = ioasId
        self.iova = iova
        self.length = length
    }
}

/// `struct iommu_option`: argument of `IOMMU_OPTION`.
public struct IOMMUOption: UAPIStruct, Hashable {
    /// The C name: `struct iommu_option`.
    public static let cName = "iommu_option"
    /// `sizeof(struct iommu_option)`: 24 bytes.
    public static let size = 24
    /// The fields of `struct iommu_option` in layout order: C name, byte offset, storage.
    @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
        f.field("size", 0, &v.size)
        f.field("option_id", 4, &v.optionId)
        f.field("op", 8, &v.op)
        f.field("__reserved", 10, &v.reserved)
        f.field("object_id", 12, &v.objectId)
        f.field("val64", 16, &v.val64)
    }

    /// `size`: the caller's structure size, for extensibility.
    public var size: UInt32 = UInt32(Self.size)
    /// `option_id`: `IOMMU_OPTION_RLIMIT_MODE` (0) or `IOMMU_OPTION_HUGE_PAGES` (1).
    public var optionId: UInt32 = 0
    /// `op`: `IOMMU_OPTION_OP_SET` (0) or `_GET` (1).
    public var op: UInt16 = 0
    /// `__reserved`: must be 0.
    public var reserved: UInt16 = 0
    /// `object_id`: the object for per-object options.
    public var objectId: UInt32 = 0
    /// `val64`: in for SET; out for GET and SET.
    public var val64: UInt64 = 0

    /// An all-zero `struct iommu_option`, but `size`, which is `sizeof`.
    public init() {}
    /// A value with the given fields, zero by default; `size` is `sizeof`.
    public init(optionId: UInt32 = 0, op: UInt16 = 0, reserved: UInt16 = 0, objectId: UInt32 = 0, val64: UInt64 = 0) {
        self.optionId = optionId
        self.op = op
        self.reserved = reserved
        self.objectId = objectId
        self.val64 = val64
    }
}

/// `struct iommu_vfio_ioas`: argument of `IOMMU_VFIO_IOAS`.
public struct IOMMUVFIOIOAS: UAPIStruct, Hashable {
    /// The C name: `struct iommu_vfio_ioas`.
    public static let cName = "iommu_vfio_ioas"
    /// `sizeof(struct iommu_vfio_ioas)`: 12 bytes.
    public static let size = 12
    /// The fields of `struct iommu_vfio_ioas` in layout order: C name, byte offset, storage.
    @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
        f.field("size", 0, &v.size)
        f.field("ioas_id", 4, &v.ioasId)
        f.field("op", 8, &v.op)
        f.field("__reserved", 10, &v.reserved)
    }

    /// `size`: the caller's structure size, for extensibility.
    public var size: UInt32 = UInt32(Self.size)
    /// `ioas_id`: in for SET; out for GET.
    public var ioasId: UInt32 = 0
    /// `op`: `IOMMU_VFIO_IOAS_GET` (0), `_SET` (1), `_CLEAR` (2).
    public var op: UInt16 = 0
    /// `__reserved`: must be 0.
    public var reserved: UInt16 = 0

    /// An all-zero `struct iommu_vfio_ioas`, but `size`, which is `sizeof`.
    public init() {}
    /// A value with the given fields, zero by default; `size` is `sizeof`.
    public init(ioasId: UInt32 = 0, op: UInt16 = 0, reserved: UInt16 = 0) {
        self.ioasId = ioasId
        self.op = op
        self.reserved = reserved
    }
}

/// `struct iommu_ioas_change_process`: argument of `IOMMU_IOAS_CHANGE_PROCESS`.
public struct IOMMUIOASChangeProcess: UAPIStruct, Hashable {
    /// The C name: `struct iommu_ioas_change_process`.
    public static let cName = "iommu_ioas_change_process"
    /// `sizeof(struct iommu_ioas_change_process)`: 8 bytes.
    public static let size = 8
    /// The fields of `struct iommu_ioas_change_process` in layout order: C name, byte offset, storage.
    @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
        f.field("size", 0, &v.size)
        f.field("__reserved", 4, &v.reserved)
    }

    /// `size`: the caller's structure size, for extensibility.
    public var size: UInt32 = UInt32(Self.size)
    /// `__reserved`: must be 0.
    public var reserved: UInt32 = 0

    /// An all-zero `struct iommu_ioas_change_process`, but `size`, which is `sizeof`.
    public init() {}
    /// A value with the given fields, zero by default; `size` is `sizeof`.
    public init(reserved: UInt32 = 0) {
        self.reserved = reserved
    }
}
