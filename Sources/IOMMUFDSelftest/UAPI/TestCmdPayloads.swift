// Generated from drivers/iommu/iommufd/iommufd_test.h: `struct iommu_test_cmd` and the
// members of its union (offsets below are relative to the union, which sits at byte 16).

/// A member of the `iommu_test_cmd` union: its size and encoding relative to the union.
public protocol IOMMUTestPayload: Sendable {
    /// `sizeof` of the union member.
    static var size: Int { get }
    /// Decodes from the union bytes.
    init(_ b: UAPIBytes)
    /// Writes into the union bytes.
    func encode(into b: inout UAPIBytes)
}

extension IOMMUTestCmd {
    /// `struct iommu_test_cmd.add_reserved` (16 bytes): the `IOMMU_TEST_OP_ADD_RESERVED` member of the union.
    public struct AddReserved: IOMMUTestPayload, Hashable {
        /// `sizeof(struct iommu_test_cmd.add_reserved)`.
        public static let size = 16
        /// `start` (u64 @0): first IOVA
        public var start: UInt64
        /// `length` (u64 @8): bytes
        public var length: UInt64
        /// A value with every field given (zero by default); `size` is `sizeof`.
        public init(start: UInt64 = 0, length: UInt64 = 0) {
            self.start = start
            self.length = length
        }
        /// Decodes the fields at their kernel offsets.
        public init(_ b: UAPIBytes) {
            start = b.u64(0)
            length = b.u64(8)
        }
        /// Writes the fields at their kernel offsets.
        public func encode(into b: inout UAPIBytes) {
            b.setU64(0, start)
            b.setU64(8, length)
        }
    }
    /// `struct iommu_test_cmd.mock_domain` (12 bytes): the `IOMMU_TEST_OP_MOCK_DOMAIN` member of the union.
    public struct MockDomain: IOMMUTestPayload, Hashable {
        /// `sizeof(struct iommu_test_cmd.mock_domain)`.
        public static let size = 12
        /// `out_stdev_id` (u32 @0): output: the SELFTEST object
        public var outStdevId: UInt32
        /// `out_hwpt_id` (u32 @4): output: the attached HWPT
        public var outHwptId: UInt32
        /// `out_idev_id` (u32 @8): output: the DEVICE object
        public var outIdevId: UInt32
        /// A value with every field given (zero by default); `size` is `sizeof`.
        public init(outStdevId: UInt32 = 0, outHwptId: UInt32 = 0, outIdevId: UInt32 = 0) {
            self.outStdevId = outStdevId
            self.outHwptId = outHwptId
            self.outIdevId = outIdevId
        }
        /// Decodes the fields at their kernel offsets.
        public init(_ b: UAPIBytes) {
            outStdevId = b.u32(0)
            outHwptId = b.u32(4)
            outIdevId = b.u32(8)
        }
        /// Writes the fields at their kernel offsets.
        public func encode(into b: inout UAPIBytes) {
            b.setU32(0, outStdevId)
            b.setU32(4, outHwptId)
            b.setU32(8, outIdevId)
        }
    }
    /// `struct iommu_test_cmd.mock_domain_flags` (16 bytes): the `IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS` member of the union.
    public struct MockDomainFlags: IOMMUTestPayload, Hashable {
        /// `sizeof(struct iommu_test_cmd.mock_domain_flags)`.
        public static let size = 16
        /// `out_stdev_id` (u32 @0): output: the SELFTEST object
        public var outStdevId: UInt32
        /// `out_hwpt_id` (u32 @4): output: the attached HWPT
        public var outHwptId: UInt32
        /// `out_idev_id` (u32 @8): output: the DEVICE object
        public var outIdevId: UInt32
        /// `dev_flags` (u32 @12): `MOCK_FLAGS_DEVICE_*`
        public var devFlags: UInt32
        /// A value with every field given (zero by default); `size` is `sizeof`.
        public init(outStdevId: UInt32 = 0, outHwptId: UInt32 = 0, outIdevId: UInt32 = 0, devFlags: UInt32 = 0) {
            self.outStdevId = outStdevId
            self.outHwptId = outHwptId
            self.outIdevId = outIdevId
            self.devFlags = devFlags
        }
        /// Decodes the fields at their kernel offsets.
        public init(_ b: UAPIBytes) {
            outStdevId = b.u32(0)
            outHwptId = b.u32(4)
            outIdevId = b.u32(8)
            devFlags = b.u32(12)
        }
        /// Writes the fields at their kernel offsets.
        public func encode(into b: inout UAPIBytes) {
            b.setU32(0, outStdevId)
            b.setU32(4, outHwptId)
            b.setU32(8, outIdevId)
            b.setU32(12, devFlags)
        }
    }
    /// `struct iommu_test_cmd.mock_domain_replace` (4 bytes): the `IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE` member of the union.
    public struct MockDomainReplace: IOMMUTestPayload, Hashable {
        /// `sizeof(struct iommu_test_cmd.mock_domain_replace)`.
        public static let size = 4
        /// `pt_id` (u32 @0): in: IOAS or HWPT; out: the attached HWPT
        public var ptId: UInt32
        /// A value with every field given (zero by default); `size` is `sizeof`.
        public init(ptId: UInt32 = 0) {
            self.ptId = ptId
        }
        /// Decodes the fields at their kernel offsets.
        public init(_ b: UAPIBytes) {
            ptId = b.u32(0)
        }
        /// Writes the fields at their kernel offsets.
        public func encode(into b: inout UAPIBytes) {
            b.setU32(0, ptId)
        }
    }
    /// `struct iommu_test_cmd.check_map` (24 bytes): the `IOMMU_TEST_OP_MD_CHECK_MAP` member of the union.
    public struct CheckMap: IOMMUTestPayload, Hashable {
        /// `sizeof(struct iommu_test_cmd.check_map)`.
        public static let size = 24
        /// `iova` (u64 @0): first IOVA
        public var iova: UInt64
        /// `length` (u64 @8): bytes
        public var length: UInt64
        /// `uptr` (u64 @16): user address expected behind the IOVA
        public var uptr: UInt64
        /// A value with every field given (zero by default); `size` is `sizeof`.
        public init(iova: UInt64 = 0, length: UInt64 = 0, uptr: UInt64 = 0) {
            self.iova = iova
            self.length = length
            self.uptr = uptr
        }
        /// Decodes the fields at their kernel offsets.
        public init(_ b: UAPIBytes) {
            iova = b.u64(0)
            length = b.u64(8)
            uptr = b.u64(16)
        }
        /// Writes the fields at their kernel offsets.
        public func encode(into b: inout UAPIBytes) {
            b.setU64(0, iova)
            b.setU64(8, length)
            b.setU64(16, uptr)
        }
    }
    /// `struct iommu_test_cmd.check_refs` (20 bytes): the `IOMMU_TEST_OP_MD_CHECK_REFS` member of the union.
    public struct CheckRefs: IOMMUTestPayload, Hashable {
        /// `sizeof(struct iommu_test_cmd.check_refs)`.
        public static let size = 20
        /// `length` (u64 @0): bytes
        public var length: UInt64
        /// `uptr` (u64 @8): user address
        public var uptr: UInt64
        /// `refs` (u32 @16): expected pin count of every page
        public var refs: UInt32
        /// A value with every field given (zero by default); `size` is `sizeof`.
        public init(length: UInt64 = 0, uptr: UInt64 = 0, refs: UInt32 = 0) {
            self.length = length
            self.uptr = uptr
            self.refs = refs
        }
        /// Decodes the fields at their kernel offsets.
        public init(_ b: UAPIBytes) {
            length = b.u64(0)
            uptr = b.u64(8)
            refs = b.u32(16)
        }
        /// Writes the fields at their kernel offsets.
        public func encode(into b: inout UAPIBytes) {
            b.setU64(0, length)
            b.setU64(8, uptr)
            b.setU32(16, refs)
        }
    }
    /// `struct iommu_test_cmd.create_access` (8 bytes): the `IOMMU_TEST_OP_CREATE_ACCESS` member of the union.
    public struct CreateAccess: IOMMUTestPayload, Hashable {
        /// `sizeof(struct iommu_test_cmd.create_access)`.
        public static let size = 8
        /// `out_access_fd` (u32 @0): output: the access file descriptor
        public var outAccessFd: UInt32
        /// `flags` (u32 @4): `MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES`
        public var flags: UInt32
        /// A value with every field given (zero by default); `size` is `sizeof`.
        public init(outAccessFd: UInt32 = 0, flags: UInt32 = 0) {
            self.outAccessFd = outAccessFd
            self.flags = flags
        }
        /// Decodes the fields at their kernel offsets.
        public init(_ b: UAPIBytes) {
            outAccessFd = b.u32(0)
            flags = b.u32(4)
        }
        /// Writes the fields at their kernel offsets.
        public func encode(into b: inout UAPIBytes) {
            b.setU32(0, outAccessFd)
            b.setU32(4, flags)
        }
    }
    /// `struct iommu_test_cmd.destroy_access_pages` (4 bytes): the `IOMMU_TEST_OP_DESTROY_ACCESS_PAGES` member of the union.
    public struct DestroyAccessPages: IOMMUTestPayload, Hashable {
        /// `sizeof(struct iommu_test_cmd.destroy_access_pages)`.
        public static let size = 4
        /// `access_pages_id` (u32 @0): the pinned item
        public var accessPagesId: UInt32
        /// A value with every field given (zero by default); `size` is `sizeof`.
        public init(accessPagesId: UInt32 = 0) {
            self.accessPagesId = accessPagesId
        }
        /// Decodes the fields at their kernel offsets.
        public init(_ b: UAPIBytes) {
            accessPagesId = b.u32(0)
        }
        /// Writes the fields at their kernel offsets.
        public func encode(into b: inout UAPIBytes) {
            b.setU32(0, accessPagesId)
        }
    }
    /// `struct iommu_test_cmd.access_pages` (32 bytes): the `IOMMU_TEST_OP_ACCESS_PAGES` member of the union.
    public struct AccessPages: IOMMUTestPayload, Hashable {
        /// `sizeof(struct iommu_test_cmd.access_pages)`.
        public static let size = 32
        /// `flags` (u32 @0): `MOCK_FLAGS_ACCESS_WRITE`, `_SYZ`
        public var flags: UInt32
        /// `out_access_pages_id` (u32 @4): output: the pinned item
        public var outAccessPagesId: UInt32
        /// `iova` (u64 @8): first IOVA
        public var iova: UInt64
        /// `length` (u64 @16): bytes
        public var length: UInt64
        /// `uptr` (u64 @24): user address expected behind the IOVA
        public var uptr: UInt64
        /// A value with every field given (zero by default); `size` is `sizeof`.
        public init(flags: UInt32 = 0, outAccessPagesId: UInt32 = 0, iova: UInt64 = 0, length: UInt64 = 0, uptr: UInt64 = 0) {
            self.flags = flags
            self.outAccessPagesId = outAccessPagesId
            self.iova = iova
            self.length = length
            self.uptr = uptr
        }
        /// Decodes the fields at their kernel offsets.
        public init(_ b: UAPIBytes) {
            flags = b.u32(0)
            outAccessPagesId = b.u32(4)
            iova = b.u64(8)
            length = b.u64(16)
            uptr = b.u64(24)
        }
        /// Writes the fields at their kernel offsets.
        public func encode(into b: inout UAPIBytes) {
            b.setU32(0, flags)
            b.setU32(4, outAccessPagesId)
            b.setU64(8, iova)
            b.setU64(16, length)
            b.setU64(24, uptr)
        }
    }
    /// `struct iommu_test_cmd.access_rw` (28 bytes): the `IOMMU_TEST_OP_ACCESS_RW` member of the union.
    public struct AccessRW: IOMMUTestPayload, Hashable {
        /// `sizeof(struct iommu_test_cmd.access_rw)`.
        public static let size = 28
        /// `iova` (u64 @0): first IOVA
        public var iova: UInt64
        /// `length` (u64 @8): bytes
        public var length: UInt64
        /// `uptr` (u64 @16): user buffer
        public var uptr: UInt64
        /// `flags` (u32 @24): `MOCK_ACCESS_RW_WRITE`, `_SLOW_PATH`
        public var flags: UInt32
        /// A value with every field given (zero by default); `size` is `sizeof`.
        public init(iova: UInt64 = 0, length: UInt64 = 0, uptr: UInt64 = 0, flags: UInt32 = 0) {
            self.iova = iova
            self.length = length
            self.uptr = uptr
            self.flags = flags
        }
        /// Decodes the fields at their kernel offsets.
        public init(_ b: UAPIBytes) {
            iova = b.u64(0)
            length = b.u64(8)
            uptr = b.u64(16)
            flags = b.u32(24)
        }
        /// Writes the fields at their kernel offsets.
        public func encode(into b: inout UAPIBytes) {
            b.setU64(0, iova)
            b.setU64(8, length)
            b.setU64(16, uptr)
            b.setU32(24, flags)
        }
    }
    /// `struct iommu_test_cmd.memory_limit` (4 bytes): the `IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT` member of the union.
    public struct MemoryLimit: IOMMUTestPayload, Hashable {
        /// `sizeof(struct iommu_test_cmd.memory_limit)`.
        public static let size = 4
        /// `limit` (u32 @0): batch memory limit
        public var limit: UInt32
        /// A value with every field given (zero by default); `size` is `sizeof`.
        public init(limit: UInt32 = 0) {
            self.limit = limit
        }
        /// Decodes the fields at their kernel offsets.
        public init(_ b: UAPIBytes) {
            limit = b.u32(0)
        }
        /// Writes the fields at their kernel offsets.
        public func encode(into b: inout UAPIBytes) {
            b.setU32(0, limit)
        }
    }
    /// `struct iommu_test_cmd.access_replace_ioas` (4 bytes): the `IOMMU_TEST_OP_ACCESS_REPLACE_IOAS` member of the union.
    public struct AccessReplaceIOAS: IOMMUTestPayload, Hashable {
        /// `sizeof(struct iommu_test_cmd.access_replace_ioas)`.
        public static let size = 4
        /// `ioas_id` (u32 @0): the new IOAS
        public var ioasId: UInt32
        /// A value with every field given (zero by default); `size` is `sizeof`.
        public init(ioasId: UInt32 = 0) {
            self.ioasId = ioasId
        }
        /// Decodes the fields at their kernel offsets.
        public init(_ b: UAPIBytes) {
            ioasId = b.u32(0)
        }
        /// Writes the fields at their kernel offsets.
        public func encode(into b: inout UAPIBytes) {
            b.setU32(0, ioasId)
        }
    }
    /// `struct iommu_test_cmd.dirty` (48 bytes): the `IOMMU_TEST_OP_DIRTY` member of the union.
    public struct Dirty: IOMMUTestPayload, Hashable {
        /// `sizeof(struct iommu_test_cmd.dirty)`.
        public static let size = 48
        /// `flags` (u32 @0): 0
        public var flags: UInt32
        /// `iova` (u64 @8): first IOVA
        public var iova: UInt64
        /// `length` (u64 @16): bytes
        public var length: UInt64
        /// `page_size` (u64 @24): bytes per bit
        public var pageSize: UInt64
        /// `uptr` (u64 @32): user bitmap
        public var uptr: UInt64
        /// `out_nr_dirty` (u64 @40): output: entries marked
        public var outNrDirty: UInt64
        /// A value with every field given (zero by default); `size` is `sizeof`.
        public init(flags: UInt32 = 0, iova: UInt64 = 0, length: UInt64 = 0, pageSize: UInt64 = 0, uptr: UInt64 = 0, outNrDirty: UInt64 = 0) {
            self.flags = flags
            self.iova = iova
            self.length = length
            self.pageSize = pageSize
            self.uptr = uptr
            self.outNrDirty = outNrDirty
        }
        /// Decodes the fields at their kernel offsets.
        public init(_ b: UAPIBytes) {
            flags = b.u32(0)
            iova = b.u64(8)
            length = b.u64(16)
            pageSize = b.u64(24)
            uptr = b.u64(32)
            outNrDirty = b.u64(40)
        }
        /// Writes the fields at their kernel offsets.
        public func encode(into b: inout UAPIBytes) {
            b.setU32(0, flags)
            b.setU64(8, iova)
            b.setU64(16, length)
            b.setU64(24, pageSize)
            b.setU64(32, uptr)
            b.setU64(40, outNrDirty)
        }
    }
    /// `struct iommu_test_cmd.check_iotlb` (8 bytes): the `IOMMU_TEST_OP_MD_CHECK_IOTLB` member of the union.
    public struct CheckIOTLB: IOMMUTestPayload, Hashable {
        /// `sizeof(struct iommu_test_cmd.check_iotlb)`.
        public static let size = 8
        /// `id` (u32 @0): IOTLB entry, 0...3
        public var id: UInt32
        /// `iotlb` (u32 @4): expected value
        public var iotlb: UInt32
        /// A value with every field given (zero by default); `size` is `sizeof`.
        public init(id: UInt32 = 0, iotlb: UInt32 = 0) {
            self.id = id
            self.iotlb = iotlb
        }
        /// Decodes the fields at their kernel offsets.
        public init(_ b: UAPIBytes) {
            id = b.u32(0)
            iotlb = b.u32(4)
        }
        /// Writes the fields at their kernel offsets.
        public func encode(into b: inout UAPIBytes) {
            b.setU32(0, id)
            b.setU32(4, iotlb)
        }
    }
    /// `struct iommu_test_cmd.trigger_iopf` (24 bytes): the `IOMMU_TEST_OP_TRIGGER_IOPF` member of the union.
    public struct TriggerIOPF: IOMMUTestPayload, Hashable {
        /// `sizeof(struct iommu_test_cmd.trigger_iopf)`.
        public static let size = 24
        /// `dev_id` (u32 @0): DEVICE object
        public var devId: UInt32
        /// `pasid` (u32 @4): PASID, 0 for none
        public var pasid: UInt32
        /// `grpid` (u32 @8): group index
        public var grpid: UInt32
        /// `perm` (u32 @12): `IOMMU_PGFAULT_PERM_*`
        public var perm: UInt32
        /// `addr` (u64 @16): faulting address
        public var addr: UInt64
        /// A value with every field given (zero by default); `size` is `sizeof`.
        public init(devId: UInt32 = 0, pasid: UInt32 = 0, grpid: UInt32 = 0, perm: UInt32 = 0, addr: UInt64 = 0) {
            self.devId = devId
            self.pasid = pasid
            self.grpid = grpid
            self.perm = perm
            self.addr = addr
        }
        /// Decodes the fields at their kernel offsets.
        public init(_ b: UAPIBytes) {
            devId = b.u32(0)
            pasid = b.u32(4)
            grpid = b.u32(8)
            perm = b.u32(12)
            addr = b.u64(16)
        }
        /// Writes the fields at their kernel offsets.
        public func encode(into b: inout UAPIBytes) {
            b.setU32(0, devId)
            b.setU32(4, pasid)
            b.setU32(8, grpid)
            b.setU32(12, perm)
            b.setU64(16, addr)
        }
    }
    /// `struct iommu_test_cmd.check_dev_cache` (8 bytes): the `IOMMU_TEST_OP_DEV_CHECK_CACHE` member of the union.
    public struct CheckDevCache: IOMMUTestPayload, Hashable {
        /// `sizeof(struct iommu_test_cmd.check_dev_cache)`.
        public static let size = 8
        /// `id` (u32 @0): cache entry, 0...3
        public var id: UInt32
        /// `cache` (u32 @4): expected value
        public var cache: UInt32
        /// A value with every field given (zero by default); `size` is `sizeof`.
        public init(id: UInt32 = 0, cache: UInt32 = 0) {
            self.id = id
            self.cache = cache
        }
        /// Decodes the fields at their kernel offsets.
        public init(_ b: UAPIBytes) {
            id = b.u32(0)
            cache = b.u32(4)
        }
        /// Writes the fields at their kernel offsets.
        public func encode(into b: inout UAPIBytes) {
            b.setU32(0, id)
            b.setU32(4, cache)
        }
    }
    /// `struct iommu_test_cmd.trigger_vevent` (4 bytes): the `IOMMU_TEST_OP_TRIGGER_VEVENT` member of the union.
    public struct TriggerVEvent: IOMMUTestPayload, Hashable {
        /// `sizeof(struct iommu_test_cmd.trigger_vevent)`.
        public static let size = 4
        /// `dev_id` (u32 @0): DEVICE object
        public var devId: UInt32
        /// A value with every field given (zero by default); `size` is `sizeof`.
        public init(devId: UInt32 = 0) {
            self.devId = devId
        }
        /// Decodes the fields at their kernel offsets.
        public init(_ b: UAPIBytes) {
            devId = b.u32(0)
        }
        /// Writes the fields at their kernel offsets.
        public func encode(into b: inout UAPIBytes) {
            b.setU32(0, devId)
        }
    }
    /// `struct iommu_test_cmd.pasid_attach` (8 bytes): the `IOMMU_TEST_OP_PASID_ATTACH` (`id` is the stdev) member of the union.
    public struct PasidAttach: IOMMUTestPayload, Hashable {
        /// `sizeof(struct iommu_test_cmd.pasid_attach)`.
        public static let size = 8
        /// `pasid` (u32 @0): PASID
        public var pasid: UInt32
        /// `pt_id` (u32 @4): IOAS or HWPT
        public var ptId: UInt32
        /// A value with every field given (zero by default); `size` is `sizeof`.
        public init(pasid: UInt32 = 0, ptId: UInt32 = 0) {
            self.pasid = pasid
            self.ptId = ptId
        }
        /// Decodes the fields at their kernel offsets.
        public init(_ b: UAPIBytes) {
            pasid = b.u32(0)
            ptId = b.u32(4)
        }
        /// Writes the fields at their kernel offsets.
        public func encode(into b: inout UAPIBytes) {
            b.setU32(0, pasid)
            b.setU32(4, ptId)
        }
    }
    /// `struct iommu_test_cmd.pasid_replace` (8 bytes): the `IOMMU_TEST_OP_PASID_REPLACE` (`id` is the stdev) member of the union.
    public struct PasidReplace: IOMMUTestPayload, Hashable {
        /// `sizeof(struct iommu_test_cmd.pasid_replace)`.
        public static let size = 8
        /// `pasid` (u32 @0): PASID
        public var pasid: UInt32
        /// `pt_id` (u32 @4): IOAS or HWPT
        public var ptId: UInt32
        /// A value with every field given (zero by default); `size` is `sizeof`.
        public init(pasid: UInt32 = 0, ptId: UInt32 = 0) {
            self.pasid = pasid
            self.ptId = ptId
        }
        /// Decodes the fields at their kernel offsets.
        public init(_ b: UAPIBytes) {
            pasid = b.u32(0)
            ptId = b.u32(4)
        }
        /// Writes the fields at their kernel offsets.
        public func encode(into b: inout UAPIBytes) {
            b.setU32(0, pasid)
            b.setU32(4, ptId)
        }
    }
    /// `struct iommu_test_cmd.pasid_detach` (4 bytes): the `IOMMU_TEST_OP_PASID_DETACH` (`id` is the stdev) member of the union.
    public struct PasidDetach: IOMMUTestPayload, Hashable {
        /// `sizeof(struct iommu_test_cmd.pasid_detach)`.
        public static let size = 4
        /// `pasid` (u32 @0): PASID
        public var pasid: UInt32
        /// A value with every field given (zero by default); `size` is `sizeof`.
        public init(pasid: UInt32 = 0) {
            self.pasid = pasid
        }
        /// Decodes the fields at their kernel offsets.
        public init(_ b: UAPIBytes) {
            pasid = b.u32(0)
        }
        /// Writes the fields at their kernel offsets.
        public func encode(into b: inout UAPIBytes) {
            b.setU32(0, pasid)
        }
    }
    /// `struct iommu_test_cmd.pasid_check` (8 bytes): the `IOMMU_TEST_OP_PASID_CHECK_HWPT` (`id` is the stdev) member of the union.
    public struct PasidCheck: IOMMUTestPayload, Hashable {
        /// `sizeof(struct iommu_test_cmd.pasid_check)`.
        public static let size = 8
        /// `pasid` (u32 @0): PASID
        public var pasid: UInt32
        /// `hwpt_id` (u32 @4): expected HWPT, 0 for none
        public var hwptId: UInt32
        /// A value with every field given (zero by default); `size` is `sizeof`.
        public init(pasid: UInt32 = 0, hwptId: UInt32 = 0) {
            self.pasid = pasid
            self.hwptId = hwptId
        }
        /// Decodes the fields at their kernel offsets.
        public init(_ b: UAPIBytes) {
            pasid = b.u32(0)
            hwptId = b.u32(4)
        }
        /// Writes the fields at their kernel offsets.
        public func encode(into b: inout UAPIBytes) {
            b.setU32(0, pasid)
            b.setU32(4, hwptId)
        }
    }
}
