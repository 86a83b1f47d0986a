// The members of the anonymous union of `struct iommu_test_cmd`
// (`drivers/iommu/iommufd/iommufd_test.h`), one per `IOMMU_TEST_OP_*`, each declared by
// its field table (UAPIRecord.swift). Offsets are from the start of the union; the union
// is at `offsetof(struct iommu_test_cmd, add_reserved)` (TestCmd.swift).

/// A member of the `iommu_test_cmd` union; its `cName` is the member's name (`dirty`).
public protocol IOMMUTestPayload: UAPIRecord {}

extension IOMMUTestCmd {
    /// `struct iommu_test_cmd.add_reserved`: the `IOMMU_TEST_OP_ADD_RESERVED` member of the union.
    public struct AddReserved: IOMMUTestPayload, Hashable {
        /// The C name: `struct add_reserved`.
        public static let cName = "add_reserved"
        /// `sizeof(struct add_reserved)`: 16 bytes.
        public static let size = 16
        /// The fields of `struct add_reserved` in layout order: C name, byte offset, storage.
        @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
            f.field("start", 0, &v.start)
            f.field("length", 8, &v.length)
        }

        /// `start`: first IOVA.
        public var start: UInt64 = 0
        /// `length`: bytes.
        public var length: UInt64 = 0

        /// An all-zero `struct add_reserved`.
        public init() {}
        /// A value with the given fields, zero by default.
        public init(start: UInt64 = 0, length: UInt64 = 0) {
            self.start = start
            self.length = length
        }
    }

    /// `struct iommu_test_cmd.mock_domain`: the `IOMMU_TEST_OP_MOCK_DOMAIN` member of the union.
    public struct MockDomain: IOMMUTestPayload, Hashable {
        /// The C name: `struct mock_domain`.
        public static let cName = "mock_domain"
        /// `sizeof(struct mock_domain)`: 12 bytes.
        public static let size = 12
        /// The fields of `struct mock_domain` in layout order: C name, byte offset, storage.
        @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
            f.field("out_stdev_id", 0, &v.outStdevId)
            f.field("out_hwpt_id", 4, &v.outHwptId)
            f.field("out_idev_id", 8, &v.outIdevId)
        }

        /// `out_stdev_id`: output: the SELFTEST object.
        public var outStdevId: UInt32 = 0
        /// `out_hwpt_id`: output: the attached HWPT.
        public var outHwptId: UInt32 = 0
        /// `out_idev_id`: output: the DEVICE object.
        public var outIdevId: UInt32 = 0

        /// An all-zero `struct mock_domain`.
        public init() {}
        /// A value with the given fields, zero by default.
        public init(outStdevId: UInt32 = 0, outHwptId: UInt32 = 0, outIdevId: UInt32 = 0) {
            self.outStdevId = outStdevId
            self.outHwptId = outHwptId
            self.outIdevId = outIdevId
        }
    }

    /// `struct iommu_test_cmd.mock_domain_flags`: the `IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS` member of the union.
    public struct MockDomainFlags: IOMMUTestPayload, Hashable {
        /// The C name: `struct mock_domain_flags`.
        public static let cName = "mock_domain_flags"
        /// `sizeof(struct mock_domain_flags)`: 16 bytes.
        public static let size = 16
        /// The fields of `struct mock_domain_flags` in layout order: C name, byte offset, storage.
        @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
            f.field("out_stdev_id", 0, &v.outStdevId)
            f.field("out_hwpt_id", 4, &v.outHwptId)
            f.field("out_idev_id", 8, &v.outIdevId)
            f.field("dev_flags", 12, &v.devFlags)
        }

        /// `out_stdev_id`: output: the SELFTEST object.
        public var outStdevId: UInt32 = 0
        /// `out_hwpt_id`: output: the attached HWPT.
        public var outHwptId: UInt32 = 0
        /// `out_idev_id`: output: the DEVICE object.
        public var outIdevId: UInt32 = 0
        /// `dev_flags`: `MOCK_FLAGS_DEVICE_*`.
        public var devFlags: UInt32 = 0

        /// An all-zero `struct mock_domain_flags`.
        public init() {}
        /// A value with the given fields, zero by default.
        public init(outStdevId: UInt32 = 0, outHwptId: UInt32 = 0, outIdevId: UInt32 = 0, devFlags: UInt32 = 0) {
            self.outStdevId = outStdevId
            self.outHwptId = outHwptId
            self.outIdevId = outIdevId
            self.devFlags = devFlags
        }
    }

    /// `struct iommu_test_cmd.mock_domain_replace`: the `IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE` member of the union.
    public struct MockDomainReplace: IOMMUTestPayload, Hashable {
        /// The C name: `struct mock_domain_replace`.
        public static let cName = "mock_domain_replace"
        /// `sizeof(struct mock_domain_replace)`: 4 bytes.
        public static let size = 4
        /// The fields of `struct mock_domain_replace` in layout order: C name, byte offset, storage.
        @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
            f.field("pt_id", 0, &v.ptId)
        }

        /// `pt_id`: in: IOAS or HWPT; out: the attached HWPT.
        public var ptId: UInt32 = 0

        /// An all-zero `struct mock_domain_replace`.
        public init() {}
        /// A value with the given fields, zero by default.
        public init(ptId: UInt32 = 0) {
            self.ptId = ptId
        }
    }

    /// `struct iommu_test_cmd.check_map`: the `IOMMU_TEST_OP_MD_CHECK_MAP` member of the union.
    public struct CheckMap: IOMMUTestPayload, Hashable {
        /// The C name: `struct check_map`.
        public static let cName = "check_map"
        /// `sizeof(struct check_map)`: 24 bytes.
        public static let size = 24
        /// The fields of `struct check_map` in layout order: C name, byte offset, storage.
        @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
            f.field("iova", 0, &v.iova)
            f.field("length", 8, &v.length)
            f.field("uptr", 16, &v.uptr)
        }

        /// `iova`: first IOVA.
        public var iova: UInt64 = 0
        /// `length`: bytes.
        public var length: UInt64 = 0
        /// `uptr`: user address expected behind the IOVA.
        public var uptr: UInt64 = 0

        /// An all-zero `struct check_map`.
        public init() {}
        /// A value with the given fields, zero by default.
        public init(iova: UInt64 = 0, length: UInt64 = 0, uptr: UInt64 = 0) {
            self.iova = iova
            self.length = length
            self.uptr = uptr
        }
    }

    /// `struct iommu_test_cmd.check_refs`: the `IOMMU_TEST_OP_MD_CHECK_REFS` member of the union.
    public struct CheckRefs: IOMMUTestPayload, Hashable {
        /// The C name: `struct check_refs`.
        public static let cName = "check_refs"
        /// `sizeof(struct check_refs)`: 24 bytes.
        public static let size = 24
        /// The fields of `struct check_refs` in layout order: C name, byte offset, storage.
        @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
            f.field("length", 0, &v.length)
            f.field("uptr", 8, &v.uptr)
            f.field("refs", 16, &v.refs)
        }

        /// `length`: bytes.
        public var length: UInt64 = 0
        /// `uptr`: user address.
        public var uptr: UInt64 = 0
        /// `refs`: expected pin count of every page.
        public var refs: UInt32 = 0

        /// An all-zero `struct check_refs`.
        public init() {}
        /// A value with the given fields, zero by default.
        public init(length: UInt64 = 0, uptr: UInt64 = 0, refs: UInt32 = 0) {
            self.length = length
            self.uptr = uptr
            self.refs = refs
        }
    }

    /// `struct iommu_test_cmd.create_access`: the `IOMMU_TEST_OP_CREATE_ACCESS` member of the union.
    public struct CreateAccess: IOMMUTestPayload, Hashable {
        /// The C name: `struct create_access`.
        public static let cName = "create_access"
        /// `sizeof(struct create_access)`: 8 bytes.
        public static let size = 8
        /// The fields of `struct create_access` in layout order: C name, byte offset, storage.
        @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
            f.field("out_access_fd", 0, &v.outAccessFd)
            f.field("flags", 4, &v.flags)
        }

        /// `out_access_fd`: output: the access file descriptor.
        public var outAccessFd: UInt32 = 0
        /// `flags`: `MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES`.
        public var flags: UInt32 = 0

        /// An all-zero `struct create_access`.
        public init() {}
        /// A value with the given fields, zero by default.
        public init(outAccessFd: UInt32 = 0, flags: UInt32 = 0) {
            self.outAccessFd = outAccessFd
            self.flags = flags
        }
    }

    /// `struct iommu_test_cmd.destroy_access_pages`: the `IOMMU_TEST_OP_DESTROY_ACCESS_PAGES` member of the union.
    public struct DestroyAccessPages: IOMMUTestPayload, Hashable {
        /// The C name: `struct destroy_access_pages`.
        public static let cName = "destroy_access_pages"
        /// `sizeof(struct destroy_access_pages)`: 4 bytes.
        public static let size = 4
        /// The fields of `struct destroy_access_pages` in layout order: C name, byte offset, storage.
        @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
            f.field("access_pages_id", 0, &v.accessPagesId)
        }

        /// `access_pages_id`: the pinned item.
        public var accessPagesId: UInt32 = 0

        /// An all-zero `struct destroy_access_pages`.
        public init() {}
        /// A value with the given fields, zero by default.
        public init(accessPagesId: UInt32 = 0) {
            self.accessPagesId = accessPagesId
        }
    }

    /// `struct iommu_test_cmd.access_pages`: the `IOMMU_TEST_OP_ACCESS_PAGES` member of the union.
    public struct AccessPages: IOMMUTestPayload, Hashable {
        /// The C name: `struct access_pages`.
        public static let cName = "access_pages"
        /// `sizeof(struct access_pages)`: 32 bytes.
        public static let size = 32
        /// The fields of `struct access_pages` in layout order: C name, byte offset, storage.
        @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
            f.field("flags", 0, &v.flags)
            f.field("out_access_pages_id", 4, &v.outAccessPagesId)
            f.field("iova", 8, &v.iova)
            f.field("length", 16, &v.length)
            f.field("uptr", 24, &v.uptr)
        }

        /// `flags`: `MOCK_FLAGS_ACCESS_WRITE`, `_SYZ`.
        public var flags: UInt32 = 0
        /// `out_access_pages_id`: output: the pinned item.
        public var outAccessPagesId: UInt32 = 0
        /// `iova`: first IOVA.
        public var iova: UInt64 = 0
        /// `length`: bytes.
        public var length: UInt64 = 0
        /// `uptr`: user address expected behind the IOVA.
        public var uptr: UInt64 = 0

        /// An all-zero `struct access_pages`.
        public init() {}
        /// A value with the given fields, zero by default.
        public init(flags: UInt32 = 0, outAccessPagesId: UInt32 = 0, iova: UInt64 = 0, length: UInt64 = 0, uptr: UInt64 = 0) {
            self.flags = flags
            self.outAccessPagesId = outAccessPagesId
            self.iova = iova
            self.length = length
            self.uptr = uptr
        }
    }

    /// `struct iommu_test_cmd.access_rw`: the `IOMMU_TEST_OP_ACCESS_RW` member of the union.
    public struct AccessRW: IOMMUTestPayload, Hashable {
        /// The C name: `struct access_rw`.
        public static let cName = "access_rw"
        /// `sizeof(struct access_rw)`: 32 bytes.
        public static let size = 32
        /// The fields of `struct access_rw` in layout order: C name, byte offset, storage.
        @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
            f.field("iova", 0, &v.iova)
            f.field("length", 8, &v.length)
            f.field("uptr", 16, &v.uptr)
            f.field("flags", 24, &v.flags)
        }

        /// `iova`: first IOVA.
        public var iova: UInt64 = 0
        /// `length`: bytes.
        public var length: UInt64 = 0
        /// `uptr`: user buffer.
        public var uptr: UInt64 = 0
        /// `flags`: `MOCK_ACCESS_RW_WRITE`, `_SLOW_PATH`.
        public var flags: UInt32 = 0

        /// An all-zero `struct access_rw`.
        public init() {}
        /// A value with the given fields, zero by default.
        public init(iova: UInt64 = 0, length: UInt64 = 0, uptr: UInt64 = 0, flags: UInt32 = 0) {
            self.iova = iova
            self.length = length
            self.uptr = uptr
            self.flags = flags
        }
    }

    /// `struct iommu_test_cmd.memory_limit`: the `IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT` member of the union.
    public struct MemoryLimit: IOMMUTestPayload, Hashable {
        /// The C name: `struct memory_limit`.
        public static let cName = "memory_limit"
        /// `sizeof(struct memory_limit)`: 4 bytes.
        public static let size = 4
        /// The fields of `struct memory_limit` in layout order: C name, byte offset, storage.
        @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
            f.field("limit", 0, &v.limit)
        }

        /// `limit`: batch memory limit.
        public var limit: UInt32 = 0

        /// An all-zero `struct memory_limit`.
        public init() {}
        /// A value with the given fields, zero by default.
        public init(limit: UInt32 = 0) {
            self.limit = limit
        }
    }

    /// `struct iommu_test_cmd.access_replace_ioas`: the `IOMMU_TEST_OP_ACCESS_REPLACE_IOAS` member of the union.
    public struct AccessReplaceIOAS: IOMMUTestPayload, Hashable {
        /// The C name: `struct access_replace_ioas`.
        public static let cName = "access_replace_ioas"
        /// `sizeof(struct access_replace_ioas)`: 4 bytes.
        public static let size = 4
        /// The fields of `struct access_replace_ioas` in layout order: C name, byte offset, storage.
        @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
            f.field("ioas_id", 0, &v.ioasId)
        }

        /// `ioas_id`: the new IOAS.
        public var ioasId: UInt32 = 0

        /// An all-zero `struct access_replace_ioas`.
        public init() {}
        /// A value with the given fields, zero by default.
        public init(ioasId: UInt32 = 0) {
            self.ioasId = ioasId
        }
    }

    /// `struct iommu_test_cmd.dirty`: the `IOMMU_TEST_OP_DIRTY` member of the union.
    public struct Dirty: IOMMUTestPayload, Hashable {
        /// The C name: `struct dirty`.
        public static let cName = "dirty"
        /// `sizeof(struct dirty)`: 48 bytes.
        public static let size = 48
        /// The fields of `struct dirty` in layout order: C name, byte offset, storage.
        @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
            f.field("flags", 0, &v.flags)
            f.field("iova", 8, &v.iova)
            f.field("length", 16, &v.length)
            f.field("page_size", 24, &v.pageSize)
            f.field("uptr", 32, &v.uptr)
            f.field("out_nr_dirty", 40, &v.outNrDirty)
        }

        /// `flags`: 0.
        public var flags: UInt32 = 0
        /// `iova`: first IOVA.
        public var iova: UInt64 = 0
        /// `length`: bytes.
        public var length: UInt64 = 0
        /// `page_size`: bytes per bit.
        public var pageSize: UInt64 = 0
        /// `uptr`: user bitmap.
        public var uptr: UInt64 = 0
        /// `out_nr_dirty`: output: entries marked.
        public var outNrDirty: UInt64 = 0

        /// An all-zero `struct dirty`.
        public init() {}
        /// A value with the given fields, zero by default.
        public init(flags: UInt32 = 0, iova: UInt64 = 0, length: UInt64 = 0, pageSize: UInt64 = 0, uptr: UInt64 = 0, outNrDirty: UInt64 = 0) {
            self.flags = flags
            self.iova = iova
            self.length = length
            self.pageSize = pageSize
            self.uptr = uptr
            self.outNrDirty = outNrDirty
        }
    }

    /// `struct iommu_test_cmd.check_iotlb`: the `IOMMU_TEST_OP_MD_CHECK_IOTLB` member of the union.
    public struct CheckIOTLB: IOMMUTestPayload, Hashable {
        /// The C name: `struct check_iotlb`.
        public static let cName = "check_iotlb"
        /// `sizeof(struct check_iotlb)`: 8 bytes.
        public static let size = 8
        /// The fields of `struct check_iotlb` in layout order: C name, byte offset, storage.
        @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
            f.field("id", 0, &v.id)
            f.field("iotlb", 4, &v.iotlb)
        }

        /// `id`: IOTLB entry, 0...3.
        public var id: UInt32 = 0
        /// `iotlb`: expected value.
        public var iotlb: UInt32 = 0

        /// An all-zero `struct check_iotlb`.
        public init() {}
        /// A value with the given fields, zero by default.
        public init(id: UInt32 = 0, iotlb: UInt32 = 0) {
            self.id = id
            self.iotlb = iotlb
        }
    }

    /// `struct iommu_test_cmd.trigger_iopf`: the `IOMMU_TEST_OP_TRIGGER_IOPF` member of the union.
    public struct TriggerIOPF: IOMMUTestPayload, Hashable {
        /// The C name: `struct trigger_iopf`.
        public static let cName = "trigger_iopf"
        /// `sizeof(struct trigger_iopf)`: 24 bytes.
        public static let size = 24
        /// The fields of `struct trigger_iopf` in layout order: C name, byte offset, storage.
        @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
            f.field("dev_id", 0, &v.devId)
            f.field("pasid", 4, &v.pasid)
            f.field("grpid", 8, &v.grpid)
            f.field("perm", 12, &v.perm)
            f.field("addr", 16, &v.addr)
        }

        /// `dev_id`: DEVICE object.
        public var devId: UInt32 = 0
        /// `pasid`: PASID, 0 for none.
        public var pasid: UInt32 = 0
        /// `grpid`: group index.
        public var grpid: UInt32 = 0
        /// `perm`: `IOMMU_PGFAULT_PERM_*`.
        public var perm: UInt32 = 0
        /// `addr`: faulting address.
        public var addr: UInt64 = 0

        /// An all-zero `struct trigger_iopf`.
        public init() {}
        /// A value with the given fields, zero by default.
        public init(devId: UInt32 = 0, pasid: UInt32 = 0, grpid: UInt32 = 0, perm: UInt32 = 0, addr: UInt64 = 0) {
            self.devId = devId
            self.pasid = pasid
            self.grpid = grpid
            self.perm = perm
            self.addr = addr
        }
    }

    /// `struct iommu_test_cmd.check_dev_cache`: the `IOMMU_TEST_OP_DEV_CHECK_CACHE` member of the union.
    public struct CheckDevCache: IOMMUTestPayload, Hashable {
        /// The C name: `struct check_dev_cache`.
        public static let cName = "check_dev_cache"
        /// `sizeof(struct check_dev_cache)`: 8 bytes.
        public static let size = 8
        /// The fields of `struct check_dev_cache` in layout order: C name, byte offset, storage.
        @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
            f.field("id", 0, &v.id)
            f.field("cache", 4, &v.cache)
        }

        /// `id`: cache entry, 0...3.
        public var id: UInt32 = 0
        /// `cache`: expected value.
        public var cache: UInt32 = 0

        /// An all-zero `struct check_dev_cache`.
        public init() {}
        /// A value with the given fields, zero by default.
        public init(id: UInt32 = 0, cache: UInt32 = 0) {
            self.id = id
            self.cache = cache
        }
    }

    /// `struct iommu_test_cmd.trigger_vevent`: the `IOMMU_TEST_OP_TRIGGER_VEVENT` member of the union.
    public struct TriggerVEvent: IOMMUTestPayload, Hashable {
        /// The C name: `struct trigger_vevent`.
        public static let cName = "trigger_vevent"
        /// `sizeof(struct trigger_vevent)`: 4 bytes.
        public static let size = 4
        /// The fields of `struct trigger_vevent` in layout order: C name, byte offset, storage.
        @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
            f.field("dev_id", 0, &v.devId)
        }

        /// `dev_id`: DEVICE object.
        public var devId: UInt32 = 0

        /// An all-zero `struct trigger_vevent`.
        public init() {}
        /// A value with the given fields, zero by default.
        public init(devId: UInt32 = 0) {
            self.devId = devId
        }
    }

    /// `struct iommu_test_cmd.pasid_attach`: the `IOMMU_TEST_OP_PASID_ATTACH` (`id` is the stdev) member of the union.
    public struct PasidAttach: IOMMUTestPayload, Hashable {
        /// The C name: `struct pasid_attach`.
        public static let cName = "pasid_attach"
        /// `sizeof(struct pasid_attach)`: 8 bytes.
        public static let size = 8
        /// The fields of `struct pasid_attach` in layout order: C name, byte offset, storage.
        @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
            f.field("pasid", 0, &v.pasid)
            f.field("pt_id", 4, &v.ptId)
        }

        /// `pasid`: PASID.
        public var pasid: UInt32 = 0
        /// `pt_id`: IOAS or HWPT.
        public var ptId: UInt32 = 0

        /// An all-zero `struct pasid_attach`.
        public init() {}
        /// A value with the given fields, zero by default.
        public init(pasid: UInt32 = 0, ptId: UInt32 = 0) {
            self.pasid = pasid
            self.ptId = ptId
        }
    }

    /// `struct iommu_test_cmd.pasid_replace`: the `IOMMU_TEST_OP_PASID_REPLACE` (`id` is the stdev) member of the union.
    public struct PasidReplace: IOMMUTestPayload, Hashable {
        /// The C name: `struct pasid_replace`.
        public static let cName = "pasid_replace"
        /// `sizeof(struct pasid_replace)`: 8 bytes.
        public static let size = 8
        /// The fields of `struct pasid_replace` in layout order: C name, byte offset, storage.
        @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
            f.field("pasid", 0, &v.pasid)
            f.field("pt_id", 4, &v.ptId)
        }

        /// `pasid`: PASID.
        public var pasid: UInt32 = 0
        /// `pt_id`: IOAS or HWPT.
        public var ptId: UInt32 = 0

        /// An all-zero `struct pasid_replace`.
        public init() {}
        /// A value with the given fields, zero by default.
        public init(pasid: UInt32 = 0, ptId: UInt32 = 0) {
            self.pasid = pasid
            self.ptId = ptId
        }
    }

    /// `struct iommu_test_cmd.pasid_detach`: the `IOMMU_TEST_OP_PASID_DETACH` (`id` is the stdev) member of the union.
    public struct PasidDetach: IOMMUTestPayload, Hashable {
        /// The C name: `struct pasid_detach`.
        public static let cName = "pasid_detach"
        /// `sizeof(struct pasid_detach)`: 4 bytes.
        public static let size = 4
        /// The fields of `struct pasid_detach` in layout order: C name, byte offset, storage.
        @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
            f.field("pasid", 0, &v.pasid)
        }

        /// `pasid`: PASID.
        public var pasid: UInt32 = 0

        /// An all-zero `struct pasid_detach`.
        public init() {}
        /// A value with the given fields, zero by default.
        public init(pasid: UInt32 = 0) {
            self.pasid = pasid
        }
    }

    /// `struct iommu_test_cmd.pasid_check`: the `IOMMU_TEST_OP_PASID_CHECK_HWPT` (`id` is the stdev) member of the union.
    public struct PasidCheck: IOMMUTestPayload, Hashable {
        /// The C name: `struct pasid_check`.
        public static let cName = "pasid_check"
        /// `sizeof(struct pasid_check)`: 8 bytes.
        public static let size = 8
        /// The fields of `struct pasid_check` in layout order: C name, byte offset, storage.
        @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
            f.field("pasid", 0, &v.pasid)
            f.field("hwpt_id", 4, &v.hwptId)
        }

        /// `pasid`: PASID.
        public var pasid: UInt32 = 0
        /// `hwpt_id`: expected HWPT, 0 for none.
        public var hwptId: UInt32 = 0

        /// An all-zero `struct pasid_check`.
        public init() {}
        /// A value with the given fields, zero by default.
        public init(pasid: UInt32 = 0, hwptId: UInt32 = 0) {
            self.pasid = pasid
            self.hwptId = hwptId
        }
    }
}
