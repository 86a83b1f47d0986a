// Generated from the field tables of include/uapi/linux/iommufd.h and drivers/iommu/iommufd/iommufd_test.h (explicit offsets,
// little-endian); see UAPIBytes.swift for the encoding rules.

/// A fixed-size uAPI record without a leading `size` field (fault records, responses,
/// vendor payloads): its `sizeof` and byte-exact encoding.
public protocol UAPIRecord: Sendable {
    /// `sizeof` of the C structure.
    static var size: Int { get }
    /// Decodes from bytes (missing bytes read as zero).
    init(_ b: UAPIBytes)
    /// Writes every field at its offset.
    func encode(into b: inout UAPIBytes)
}

extension UAPIRecord {
    /// The `sizeof`-long byte image.
    public var bytes: [UInt8] {
        var b = UAPIBytes(count: Self.size)
        encode(into: &b)
        return b.bytes
    }
    /// Decodes from raw bytes.
    public init(bytes: [UInt8]) { self.init(UAPIBytes(bytes)) }
}

/// `struct iommu_hwpt_pgfault` (40 bytes): one page-fault record read from a fault queue fd.
public struct IOMMUHWPTPgfault: UAPIRecord, Hashable {
    /// `sizeof(struct iommu_hwpt_pgfault)`.
    public static let size = 40
    /// `flags` (u32 @0): `IOMMU_PGFAULT_FLAGS_PASID_VALID` (1), `_LAST_PAGE` (2)
    public var flags: UInt32
    /// `dev_id` (u32 @4): iommufd device id
    public var devId: UInt32
    /// `pasid` (u32 @8): PASID, valid with PASID_VALID
    public var pasid: UInt32
    /// `grpid` (u32 @12): page request group index
    public var grpid: UInt32
    /// `perm` (u32 @16): `IOMMU_PGFAULT_PERM_READ` 1, `WRITE` 2, `EXEC` 4, `PRIV` 8
    public var perm: UInt32
    /// `__reserved` (u32 @20): 0
    public var reserved: UInt32
    /// `addr` (u64 @24): faulting address
    public var addr: UInt64
    /// `length` (u32 @32): 0
    public var length: UInt32
    /// `cookie` (u32 @36): the group cookie to answer with
    public var cookie: UInt32
    /// A value with every field given (zero by default); `size` is `sizeof`.
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
    /// Decodes the fields at their kernel offsets.
    public init(_ b: UAPIBytes) {
        flags = b.u32(0)
        devId = b.u32(4)
        pasid = b.u32(8)
        grpid = b.u32(12)
        perm = b.u32(16)
        reserved = b.u32(20)
        addr = b.u64(24)
        length = b.u32(32)
        cookie = b.u32(36)
    }
    /// Writes the fields at their kernel offsets.
    public func encode(into b: inout UAPIBytes) {
        b.setU32(0, flags)
        b.setU32(4, devId)
        b.setU32(8, pasid)
        b.setU32(12, grpid)
        b.setU32(16, perm)
        b.setU32(20, reserved)
        b.setU64(24, addr)
        b.setU32(32, length)
        b.setU32(36, cookie)
    }
}
/// `struct iommu_hwpt_page_response` (8 bytes): one response written to a fault queue fd.
public struct IOMMUHWPTPageResponse: UAPIRecord, Hashable {
    /// `sizeof(struct iommu_hwpt_page_response)`.
    public static let size = 8
    /// `cookie` (u32 @0): the cookie of the fault group
    public var cookie: UInt32
    /// `code` (u32 @4): `IOMMUFD_PAGE_RESP_SUCCESS` (0) or `_INVALID` (1)
    public var code: UInt32
    /// A value with every field given (zero by default); `size` is `sizeof`.
    public init(cookie: UInt32 = 0, code: UInt32 = 0) {
        self.cookie = cookie
        self.code = code
    }
    /// Decodes the fields at their kernel offsets.
    public init(_ b: UAPIBytes) {
        cookie = b.u32(0)
        code = b.u32(4)
    }
    /// Writes the fields at their kernel offsets.
    public func encode(into b: inout UAPIBytes) {
        b.setU32(0, cookie)
        b.setU32(4, code)
    }
}
/// `struct iommu_hwpt_selftest` (4 bytes): nested HWPT data of the mock (`IOMMU_HWPT_DATA_SELFTEST`).
public struct IOMMUHWPTSelftest: UAPIRecord, Hashable {
    /// `sizeof(struct iommu_hwpt_selftest)`.
    public static let size = 4
    /// `iotlb` (u32 @0): initial value of the 4 mock IOTLB entries
    public var iotlb: UInt32
    /// A value with every field given (zero by default); `size` is `sizeof`.
    public init(iotlb: UInt32 = 0) {
        self.iotlb = iotlb
    }
    /// Decodes the fields at their kernel offsets.
    public init(_ b: UAPIBytes) {
        iotlb = b.u32(0)
    }
    /// Writes the fields at their kernel offsets.
    public func encode(into b: inout UAPIBytes) {
        b.setU32(0, iotlb)
    }
}
/// `struct iommu_hwpt_invalidate_selftest` (8 bytes): one mock invalidation entry (`IOMMU_HWPT_INVALIDATE_DATA_SELFTEST`).
public struct IOMMUHWPTInvalidateSelftest: UAPIRecord, Hashable {
    /// `sizeof(struct iommu_hwpt_invalidate_selftest)`.
    public static let size = 8
    /// `flags` (u32 @0): `IOMMU_TEST_INVALIDATE_FLAG_ALL`
    public var flags: UInt32
    /// `iotlb_id` (u32 @4): entry to invalidate, 0...3
    public var iotlbId: UInt32
    /// A value with every field given (zero by default); `size` is `sizeof`.
    public init(flags: UInt32 = 0, iotlbId: UInt32 = 0) {
        self.flags = flags
        self.iotlbId = iotlbId
    }
    /// Decodes the fields at their kernel offsets.
    public init(_ b: UAPIBytes) {
        flags = b.u32(0)
        iotlbId = b.u32(4)
    }
    /// Writes the fields at their kernel offsets.
    public func encode(into b: inout UAPIBytes) {
        b.setU32(0, flags)
        b.setU32(4, iotlbId)
    }
}
/// `struct iommu_test_hw_info` (8 bytes): the mock's `IOMMU_GET_HW_INFO` payload (`IOMMU_HW_INFO_TYPE_SELFTEST`).
public struct IOMMUTestHWInfo: UAPIRecord, Hashable {
    /// `sizeof(struct iommu_test_hw_info)`.
    public static let size = 8
    /// `flags` (u32 @0): 0
    public var flags: UInt32
    /// `test_reg` (u32 @4): `IOMMU_HW_INFO_SELFTEST_REGVAL`
    public var testReg: UInt32
    /// A value with every field given (zero by default); `size` is `sizeof`.
    public init(flags: UInt32 = 0, testReg: UInt32 = 0) {
        self.flags = flags
        self.testReg = testReg
    }
    /// Decodes the fields at their kernel offsets.
    public init(_ b: UAPIBytes) {
        flags = b.u32(0)
        testReg = b.u32(4)
    }
    /// Writes the fields at their kernel offsets.
    public func encode(into b: inout UAPIBytes) {
        b.setU32(0, flags)
        b.setU32(4, testReg)
    }
}
/// `struct vfio_iommu_type1_info` (24 bytes): argument of `VFIO_IOMMU_GET_INFO` (minimum 16 bytes, `iova_pgsizes`).
public struct VFIOIOMMUType1Info: UAPIRecord, Hashable {
    /// `sizeof(struct vfio_iommu_type1_info)`.
    public static let size = 24
    /// `argsz` (u32 @0): caller size; out: size needed for every capability
    public var argsz: UInt32
    /// `flags` (u32 @4): `VFIO_IOMMU_INFO_PGSIZES|CAPS`
    public var flags: UInt32
    /// `iova_pgsizes` (u64 @8): supported page sizes
    public var iovaPgsizes: UInt64
    /// `cap_offset` (u32 @16): offset of the first capability, 0 if none fit
    public var capOffset: UInt32
    /// `pad` (u32 @20): padding
    public var pad: UInt32
    /// A value with every field given (zero by default); `size` is `sizeof`.
    public init(argsz: UInt32 = 0, flags: UInt32 = 0, iovaPgsizes: UInt64 = 0, capOffset: UInt32 = 0, pad: UInt32 = 0) {
        self.argsz = argsz
        self.flags = flags
        self.iovaPgsizes = iovaPgsizes
        self.capOffset = capOffset
        self.pad = pad
    }
    /// Decodes the fields at their kernel offsets.
    public init(_ b: UAPIBytes) {
        argsz = b.u32(0)
        flags = b.u32(4)
        iovaPgsizes = b.u64(8)
        capOffset = b.u32(16)
        pad = b.u32(20)
    }
    /// Writes the fields at their kernel offsets.
    public func encode(into b: inout UAPIBytes) {
        b.setU32(0, argsz)
        b.setU32(4, flags)
        b.setU64(8, iovaPgsizes)
        b.setU32(16, capOffset)
        b.setU32(20, pad)
    }
}
/// `struct vfio_iommu_type1_dma_map` (32 bytes): argument of `VFIO_IOMMU_MAP_DMA`.
public struct VFIOIOMMUType1DMAMap: UAPIRecord, Hashable {
    /// `sizeof(struct vfio_iommu_type1_dma_map)`.
    public static let size = 32
    /// `argsz` (u32 @0): caller size, at least 32
    public var argsz: UInt32
    /// `flags` (u32 @4): `VFIO_DMA_MAP_FLAG_READ|WRITE`
    public var flags: UInt32
    /// `vaddr` (u64 @8): user address
    public var vaddr: UInt64
    /// `iova` (u64 @16): IOVA
    public var iova: UInt64
    /// `size` (u64 @24): bytes
    public var size: UInt64
    /// A value with every field given (zero by default); `size` is `sizeof`.
    public init(argsz: UInt32 = 0, flags: UInt32 = 0, vaddr: UInt64 = 0, iova: UInt64 = 0, size: UInt64 = 0) {
        self.argsz = argsz
        self.flags = flags
        self.vaddr = vaddr
        self.iova = iova
        self.size = size
    }
    /// Decodes the fields at their kernel offsets.
    public init(_ b: UAPIBytes) {
        argsz = b.u32(0)
        flags = b.u32(4)
        vaddr = b.u64(8)
        iova = b.u64(16)
        size = b.u64(24)
    }
    /// Writes the fields at their kernel offsets.
    public func encode(into b: inout UAPIBytes) {
        b.setU32(0, argsz)
        b.setU32(4, flags)
        b.setU64(8, vaddr)
        b.setU64(16, iova)
        b.setU64(24, size)
    }
}
/// `struct vfio_iommu_type1_dma_unmap` (24 bytes): argument of `VFIO_IOMMU_UNMAP_DMA`.
public struct VFIOIOMMUType1DMAUnmap: UAPIRecord, Hashable {
    /// `sizeof(struct vfio_iommu_type1_dma_unmap)`.
    public static let size = 24
    /// `argsz` (u32 @0): caller size, at least 24
    public var argsz: UInt32
    /// `flags` (u32 @4): `VFIO_DMA_UNMAP_FLAG_ALL`
    public var flags: UInt32
    /// `iova` (u64 @8): IOVA
    public var iova: UInt64
    /// `size` (u64 @16): in: bytes; out: bytes unmapped
    public var size: UInt64
    /// A value with every field given (zero by default); `size` is `sizeof`.
    public init(argsz: UInt32 = 0, flags: UInt32 = 0, iova: UInt64 = 0, size: UInt64 = 0) {
        self.argsz = argsz
        self.flags = flags
        self.iova = iova
        self.size = size
    }
    /// Decodes the fields at their kernel offsets.
    public init(_ b: UAPIBytes) {
        argsz = b.u32(0)
        flags = b.u32(4)
        iova = b.u64(8)
        size = b.u64(16)
    }
    /// Writes the fields at their kernel offsets.
    public func encode(into b: inout UAPIBytes) {
        b.setU32(0, argsz)
        b.setU32(4, flags)
        b.setU64(8, iova)
        b.setU64(16, size)
    }
}
