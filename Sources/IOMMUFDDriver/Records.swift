// uAPI records: structures without an iommufd size word that cross as data (the fault
// queue's records, vendor data of the selftest mock, elements of arrays) and the VFIO type1
// compatibility structures of `include/uapi/linux/vfio.h`. Each is declared by its field
// table (UAPIRecord.swift).

/// `struct iommu_iova_range`: an inclusive IOVA range, the element of the arrays of
/// `IOMMU_IOAS_IOVA_RANGES` and `IOMMU_IOAS_ALLOW_IOVAS`.
public struct IOMMUIOVARange: UAPIRecord, Hashable {
    /// The C name: `struct iommu_iova_range`.
    public static let cName = "iommu_iova_range"
    /// `sizeof(struct iommu_iova_range)`: 16 bytes.
    public static let size = 16
    /// The fields of `struct iommu_iova_range` in layout order: C name, byte offset, storage.
    @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
        f.field("start", 0, &v.start)
        f.field("last", 8, &v.last)
    }

    /// `start`: the first IOVA.
    public var start: UInt64 = 0
    /// `last`: the last IOVA, inclusive.
    public var last: UInt64 = 0

    /// An all-zero `struct iommu_iova_range`.
    public init() {}
    /// A range `[start, last]`.
    public init(start: UInt64, last: UInt64) {
        self.start = start
        self.last = last
    }
}

/// `struct iommu_hwpt_pgfault`: one page-fault record read from a fault queue fd.
public struct IOMMUHWPTPgfault: UAPIRecord, Hashable {
    /// The C name: `struct iommu_hwpt_pgfault`.
    public static let cName = "iommu_hwpt_pgfault"
    /// `sizeof(struct iommu_hwpt_pgfault)`: 40 bytes.
    public static let size = 40
    /// The fields of `struct iommu_hwpt_pgfault` in layout order: C name, byte offset, storage.
    @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
        f.field("flags", 0, &v.flags)
        f.field("dev_id", 4, &v.devId)
        f.field("pasid", 8, &v.pasid)
        f.field("grpid", 12, &v.grpid)
        f.field("perm", 16, &v.perm)
        f.field("__reserved", 20, &v.reserved)
        f.field("addr", 24, &v.addr)
        f.field("length", 32, &v.length)
        f.field("cookie", 36, &v.cookie)
    }

    /// `flags`: `IOMMU_PGFAULT_FLAGS_PASID_VALID` (1), `_LAST_PAGE` (2).
    public var flags: UInt32 = 0
    /// `dev_id`: iommufd device id.
    public var devId: UInt32 = 0
    /// `pasid`: PASID, valid with PASID_VALID.
    public var pasid: UInt32 = 0
    /// `grpid`: page request group index.
    public var grpid: UInt32 = 0
    /// `perm`: `IOMMU_PGFAULT_PERM_READ` 1, `WRITE` 2, `EXEC` 4, `PRIV` 8.
    public var perm: UInt32 = 0
    /// `__reserved`: 0.
    public var reserved: UInt32 = 0
    /// `addr`: faulting address.
    public var addr: UInt64 = 0
    /// `length`: 0.
    public var length: UInt32 = 0
    /// `cookie`: the group cookie to answer with.
    public var cookie: UInt32 = 0

    /// An all-zero `struct iommu_hwpt_pgfault`.
    public init() {}
    /// A value with the given fields, zero by default.
    public init(flags: UInt32 = 0, devId: UInt32 = 0, pasid: UInt32 = 0, grpid: UInt32 = 0, perm: UInt32 = 0, reserved: UInt32 = 0, addr: UInt64 = 0, length: UInt32 = 0, cookie: UInt32 = 0) {
        self.flags = flags
        self.devId = devId
        self.pasid = pasid
        self.grpid = grpid
        self.perm = perm
        self.reserved = reserved
        self.addr = addr
        self.length = length
        self.cookie = cookie
    }
}

/// `struct iommu_hwpt_page_response`: one response written to a fault queue fd.
public struct IOMMUHWPTPageResponse: UAPIRecord, Hashable {
    /// The C name: `struct iommu_hwpt_page_response`.
    public static let cName = "iommu_hwpt_page_response"
    /// `sizeof(struct iommu_hwpt_page_response)`: 8 bytes.
    public static let size = 8
    /// The fields of `struct iommu_hwpt_page_response` in layout order: C name, byte offset, storage.
    @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
        f.field("cookie", 0, &v.cookie)
        f.field("code", 4, &v.code)
    }

    /// `cookie`: the cookie of the fault group.
    public var cookie: UInt32 = 0
    /// `code`: `IOMMUFD_PAGE_RESP_SUCCESS` (0) or `_INVALID` (1).
    public var code: UInt32 = 0

    /// An all-zero `struct iommu_hwpt_page_response`.
    public init() {}
    /// A value with the given fields, zero by default.
    public init(cookie: UInt32 = 0, code: UInt32 = 0) {
        self.cookie = cookie
        self.code = code
    }
}

/// `struct iommu_hwpt_selftest`: nested HWPT data of the mock (`IOMMU_HWPT_DATA_SELFTEST`).
public struct IOMMUHWPTSelftest: UAPIRecord, Hashable {
    /// The C name: `struct iommu_hwpt_selftest`.
    public static let cName = "iommu_hwpt_selftest"
    /// `sizeof(struct iommu_hwpt_selftest)`: 4 bytes.
    public static let size = 4
    /// The fields of `struct iommu_hwpt_selftest` in layout order: C name, byte offset, storage.
    @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
        f.field("iotlb", 0, &v.iotlb)
    }

    /// `iotlb`: initial value of the 4 mock IOTLB entries.
    public var iotlb: UInt32 = 0

    /// An all-zero `struct iommu_hwpt_selftest`.
    public init() {}
    /// A value with the given fields, zero by default.
    public init(iotlb: UInt32 = 0) {
        self.iotlb = iotlb
    }
}

/// `struct iommu_hwpt_invalidate_selftest`: one mock invalidation entry (`IOMMU_HWPT_INVALIDATE_DATA_SELFTEST`).
public struct IOMMUHWPTInvalidateSelftest: UAPIRecord, Hashable {
    /// The C name: `struct iommu_hwpt_invalidate_selftest`.
    public static let cName = "iommu_hwpt_invalidate_selftest"
    /// `sizeof(struct iommu_hwpt_invalidate_selftest)`: 8 bytes.
    public static let size = 8
    /// The fields of `struct iommu_hwpt_invalidate_selftest` in layout order: C name, byte offset, storage.
    @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
        f.field("flags", 0, &v.flags)
        f.field("iotlb_id", 4, &v.iotlbId)
    }

    /// `flags`: `IOMMU_TEST_INVALIDATE_FLAG_ALL`.
    public var flags: UInt32 = 0
    /// `iotlb_id`: entry to invalidate, 0...3.
    public var iotlbId: UInt32 = 0

    /// An all-zero `struct iommu_hwpt_invalidate_selftest`.
    public init() {}
    /// A value with the given fields, zero by default.
    public init(flags: UInt32 = 0, iotlbId: UInt32 = 0) {
        self.flags = flags
        self.iotlbId = iotlbId
    }
}

/// `struct iommu_test_hw_info`: the mock's `IOMMU_GET_HW_INFO` payload (`IOMMU_HW_INFO_TYPE_SELFTEST`).
public struct IOMMUTestHWInfo: UAPIRecord, Hashable {
    /// The C name: `struct iommu_test_hw_info`.
    public static let cName = "iommu_test_hw_info"
    /// `sizeof(struct iommu_test_hw_info)`: 8 bytes.
    public static let size = 8
    /// The fields of `struct iommu_test_hw_info` in layout order: C name, byte offset, storage.
    @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
        f.field("flags", 0, &v.flags)
        f.field("test_reg", 4, &v.testReg)
    }

    /// `flags`: 0.
    public var flags: UInt32 = 0
    /// `test_reg`: `IOMMU_HW_INFO_SELFTEST_REGVAL`.
    public var testReg: UInt32 = 0

    /// An all-zero `struct iommu_test_hw_info`.
    public init() {}
    /// A value with the given fields, zero by default.
    public init(flags: UInt32 = 0, testReg: UInt32 = 0) {
        self.flags = flags
        self.testReg = testReg
    }
}

/// `struct vfio_iommu_type1_info`: argument of `VFIO_IOMMU_GET_INFO`; the capability
/// chain (``VFIOInfoCapHeader``) follows it.
public struct VFIOIOMMUType1Info: UAPIStruct, Hashable {
    /// The C name: `struct vfio_iommu_type1_info`.
    public static let cName = "vfio_iommu_type1_info"
    /// `sizeof(struct vfio_iommu_type1_info)`: 24 bytes.
    public static let size = 24
    /// `minsz` of `iommufd_vfio_iommu_get_info`: `offsetofend(iova_pgsizes)`.
    public static let minSize = offsetOfEnd("iova_pgsizes")
    /// The fields of `struct vfio_iommu_type1_info` in layout order: C name, byte offset, storage.
    @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
        f.field("argsz", 0, &v.argsz)
        f.field("flags", 4, &v.flags)
        f.field("iova_pgsizes", 8, &v.iovaPgsizes)
        f.field("cap_offset", 16, &v.capOffset)
        f.field("pad", 20, &v.pad)
    }

    /// `argsz`: caller size; out: size needed for every capability.
    public var argsz: UInt32 = 0
    /// `flags`: `VFIO_IOMMU_INFO_PGSIZES|CAPS`.
    public var flags: UInt32 = 0
    /// `iova_pgsizes`: supported page sizes.
    public var iovaPgsizes: UInt64 = 0
    /// `cap_offset`: offset of the first capability, 0 if none fit.
    public var capOffset: UInt32 = 0
    /// `pad`: padding.
    public var pad: UInt32 = 0

    /// An all-zero `struct vfio_iommu_type1_info`.
    public init() {}
    /// A value with the given fields, zero by default.
    public init(argsz: UInt32 = 0, flags: UInt32 = 0, iovaPgsizes: UInt64 = 0, capOffset: UInt32 = 0, pad: UInt32 = 0) {
        self.argsz = argsz
        self.flags = flags
        self.iovaPgsizes = iovaPgsizes
        self.capOffset = capOffset
        self.pad = pad
    }
}

/// `struct vfio_iommu_type1_dma_map`: argument of `VFIO_IOMMU_MAP_DMA`.
public struct VFIOIOMMUType1DMAMap: UAPIStruct, Hashable {
    /// The C name: `struct vfio_iommu_type1_dma_map`.
    public static let cName = "vfio_iommu_type1_dma_map"
    /// `sizeof(struct vfio_iommu_type1_dma_map)`: 32 bytes.
    public static let size = 32
    /// The fields of `struct vfio_iommu_type1_dma_map` in layout order: C name, byte offset, storage.
    @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
        f.field("argsz", 0, &v.argsz)
        f.field("flags", 4, &v.flags)
        f.field("vaddr", 8, &v.vaddr)
        f.field("iova", 16, &v.iova)
        f.field("size", 24, &v.size)
    }

    /// `argsz`: caller size, at least 32.
    public var argsz: UInt32 = 0
    /// `flags`: `VFIO_DMA_MAP_FLAG_READ|WRITE`.
    public var flags: UInt32 = 0
    /// `vaddr`: user address.
    public var vaddr: UInt64 = 0
    /// `iova`: IOVA.
    public var iova: UInt64 = 0
    /// `size`: bytes.
    public var size: UInt64 = 0

    /// An all-zero `struct vfio_iommu_type1_dma_map`.
    public init() {}
    /// A value with the given fields, zero by default.
    public init(argsz: UInt32 = 0, flags: UInt32 = 0, vaddr: UInt64 = 0, iova: UInt64 = 0, size: UInt64 = 0) {
        self.argsz = argsz
        self.flags = flags
        self.vaddr = vaddr
        self.iova = iova
        self.size = size
    }
}

/// `struct vfio_iommu_type1_dma_unmap`: argument of `VFIO_IOMMU_UNMAP_DMA`.
public struct VFIOIOMMUType1DMAUnmap: UAPIStruct, Hashable {
    /// The C name: `struct vfio_iommu_type1_dma_unmap`.
    public static let cName = "vfio_iommu_type1_dma_unmap"
    /// `sizeof(struct vfio_iommu_type1_dma_unmap)`: 24 bytes.
    public static let size = 24
    /// The fields of `struct vfio_iommu_type1_dma_unmap` in layout order: C name, byte offset, storage.
    @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
        f.field("argsz", 0, &v.argsz)
        f.field("flags", 4, &v.flags)
        f.field("iova", 8, &v.iova)
        f.field("size", 16, &v.size)
        f.flexibleArray("data", 24, of: UInt8.self)
    }

    /// `argsz`: caller size, at least 24.
    public var argsz: UInt32 = 0
    /// `flags`: `VFIO_DMA_UNMAP_FLAG_ALL`.
    public var flags: UInt32 = 0
    /// `iova`: IOVA.
    public var iova: UInt64 = 0
    /// `size`: in: bytes; out: bytes unmapped.
    public var size: UInt64 = 0

    /// An all-zero `struct vfio_iommu_type1_dma_unmap`.
    public init() {}
    /// A value with the given fields, zero by default.
    public init(argsz: UInt32 = 0, flags: UInt32 = 0, iova: UInt64 = 0, size: UInt64 = 0) {
        self.argsz = argsz
        self.flags = flags
        self.iova = iova
        self.size = size
    }
}

/// `struct vfio_info_cap_header`: the head of every capability in a VFIO info chain.
public struct VFIOInfoCapHeader: UAPIRecord, Hashable {
    /// The C name: `struct vfio_info_cap_header`.
    public static let cName = "vfio_info_cap_header"
    /// `sizeof(struct vfio_info_cap_header)`: 8 bytes.
    public static let size = 8
    /// The fields of `struct vfio_info_cap_header` in layout order: C name, byte offset, storage.
    @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
        f.field("id", 0, &v.id)
        f.field("version", 2, &v.version)
        f.field("next", 4, &v.next)
    }

    /// `id`: the capability (`VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE`, `_DMA_AVAIL`).
    public var id: UInt16 = 0
    /// `version`: of the capability's structure.
    public var version: UInt16 = 0
    /// `next`: offset of the next capability from the start of the info structure, 0 at
    /// the end of the chain.
    public var next: UInt32 = 0

    /// An all-zero `struct vfio_info_cap_header`.
    public init() {}
    /// A header with the given fields, zero by default.
    public init(id: UInt16 = 0, version: UInt16 = 0, next: UInt32 = 0) {
        self.id = id
        self.version = version
        self.next = next
    }
}

/// `struct vfio_iova_range`: an element of ``VFIOIOMMUType1InfoCapIOVARange``.
public struct VFIOIOVARange: UAPIRecord, Hashable {
    /// The C name: `struct vfio_iova_range`.
    public static let cName = "vfio_iova_range"
    /// `sizeof(struct vfio_iova_range)`: 16 bytes.
    public static let size = 16
    /// The fields of `struct vfio_iova_range` in layout order: C name, byte offset, storage.
    @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
        f.field("start", 0, &v.start)
        f.field("end", 8, &v.end)
    }

    /// `start`: the first IOVA.
    public var start: UInt64 = 0
    /// `end`: the last IOVA, inclusive.
    public var end: UInt64 = 0

    /// An all-zero `struct vfio_iova_range`.
    public init() {}
    /// A range `[start, end]`.
    public init(start: UInt64, end: UInt64) {
        self.start = start
        self.end = end
    }
}

/// `struct vfio_iommu_type1_info_cap_iova_range`: the usable IOVA ranges of a VFIO
/// container (`VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE`, version 1); `nr_iovas` elements
/// follow it.
public struct VFIOIOMMUType1InfoCapIOVARange: UAPIRecord, Hashable {
    /// The C name: `struct vfio_iommu_type1_info_cap_iova_range`.
    public static let cName = "vfio_iommu_type1_info_cap_iova_range"
    /// `sizeof(struct vfio_iommu_type1_info_cap_iova_range)`: 16 bytes.
    public static let size = 16
    /// The fields of `struct vfio_iommu_type1_info_cap_iova_range` in layout order: C name, byte offset, storage.
    @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
        f.field("header", 0, &v.header)
        f.field("nr_iovas", 8, &v.nrIovas)
        f.field("reserved", 12, &v.reserved)
        f.flexibleArray("iova_ranges", 16, of: VFIOIOVARange.self)
    }

    /// `header`.
    public var header: VFIOInfoCapHeader = VFIOInfoCapHeader()
    /// `nr_iovas`: the number of ranges that follow.
    public var nrIovas: UInt32 = 0
    /// `reserved`.
    public var reserved: UInt32 = 0

    /// An all-zero `struct vfio_iommu_type1_info_cap_iova_range`.
    public init() {}
    /// A capability with the given fields, zero by default.
    public init(header: VFIOInfoCapHeader = VFIOInfoCapHeader(), nrIovas: UInt32 = 0) {
        self.header = header
        self.nrIovas = nrIovas
    }
}

/// `struct vfio_iommu_type1_info_dma_avail`: how many more DMA mappings the container
/// allows (`VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL`, version 1).
public struct VFIOIOMMUType1InfoDMAAvail: UAPIRecord, Hashable {
    /// The C name: `struct vfio_iommu_type1_info_dma_avail`.
    public static let cName = "vfio_iommu_type1_info_dma_avail"
    /// `sizeof(struct vfio_iommu_type1_info_dma_avail)`: 12 bytes.
    public static let size = 12
    /// The fields of `struct vfio_iommu_type1_info_dma_avail` in layout order: C name, byte offset, storage.
    @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
        f.field("header", 0, &v.header)
        f.field("avail", 8, &v.avail)
    }

    /// `header`.
    public var header: VFIOInfoCapHeader = VFIOInfoCapHeader()
    /// `avail`: the mappings still allowed.
    public var avail: UInt32 = 0

    /// An all-zero `struct vfio_iommu_type1_info_dma_avail`.
    public init() {}
    /// A capability with the given fields, zero by default.
    public init(header: VFIOInfoCapHeader = VFIOInfoCapHeader(), avail: UInt32 = 0) {
        self.header = header
        self.avail = avail
    }
}
