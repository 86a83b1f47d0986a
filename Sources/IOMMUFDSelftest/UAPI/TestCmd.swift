import IOMMUDrivers

/// `struct iommu_test_cmd`: argument of `IOMMU_TEST_CMD` (`drivers/iommu/iommufd/iommufd_test.h`).
/// `__reserved` is not checked by the kernel. The anonymous union is kept as its bytes;
/// its members are the ``IOMMUTestPayload`` structures, read with ``member(_:)``.
public struct IOMMUTestCmd: UAPIStruct, Hashable {
    /// The C name: `struct iommu_test_cmd`.
    public static let cName = "iommu_test_cmd"
    /// `sizeof(struct iommu_test_cmd)`: 72 bytes.
    public static let size = 72
    /// `IOCTL_OP(IOMMU_TEST_CMD, iommufd_test, struct iommu_test_cmd, last)`.
    public static let minSize = offsetOfEnd("last")
    /// The fields of `struct iommu_test_cmd` in layout order: C name, byte offset, storage.
    @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
        f.field("size", 0, &v.size)
        f.field("op", 4, &v.op)
        f.field("id", 8, &v.id)
        f.field("__reserved", 12, &v.reserved)
        f.union(16, &v.payload, members: unionMembers)
        f.field("last", 64, &v.last)
    }

    /// The members of the union, one per op that has arguments.
    public static let unionMembers: [any UAPIRecord.Type] = [
        AddReserved.self, MockDomain.self, MockDomainFlags.self, MockDomainReplace.self, CheckMap.self,
        CheckRefs.self, CreateAccess.self, DestroyAccessPages.self, AccessPages.self, AccessRW.self,
        MemoryLimit.self, AccessReplaceIOAS.self, Dirty.self, CheckIOTLB.self, TriggerIOPF.self,
        CheckDevCache.self, TriggerVEvent.self, PasidAttach.self, PasidReplace.self, PasidDetach.self,
        PasidCheck.self,
    ]
    /// The size of the union: its largest member, rounded up to the members' alignment.
    public static let unionSize: Int = {
        let largest = unionMembers.map { $0.size }.max() ?? 0
        let alignment = unionMembers.map { $0.layout.alignment }.max() ?? 1
        return (largest + alignment - 1) / alignment * alignment
    }()

    /// `size`: the caller's structure size.
    public var size: UInt32 = UInt32(Self.size)
    /// `op`: `IOMMU_TEST_OP_*`.
    public var op: UInt32 = 0
    /// `id`: the object the op works on.
    public var id: UInt32 = 0
    /// `__reserved`: ignored.
    public var reserved: UInt32 = 0
    /// The union's bytes.
    public var payload: UAPIBytes = UAPIBytes(count: Self.unionSize)
    /// `last`: the end of the mandatory part.
    public var last: UInt32 = 0

    /// An all-zero `struct iommu_test_cmd`, but `size`, which is `sizeof`.
    public init() {}

    /// A command with a typed union member.
    public init<P: IOMMUTestPayload>(op: UInt32, id: UInt32 = 0, _ member: P) {
        self.op = op
        self.id = id
        member.encode(into: &payload)
    }

    /// A command with an all-zero union.
    public init(op: UInt32 = 0, id: UInt32 = 0) {
        self.op = op
        self.id = id
    }

    /// The union read as member `P`.
    public func member<P: IOMMUTestPayload>(_: P.Type) -> P { P(payload) }

    /// Replaces the union with member `m` (the bytes past it are zeroed).
    public mutating func setMember<P: IOMMUTestPayload>(_ m: P) {
        payload = UAPIBytes(count: Self.unionSize)
        m.encode(into: &payload)
    }
}

/// `IOMMU_TEST_OP_*` and the selftest constants of `iommufd_test.h`.
public enum IOMMUTestOp {
    /// `IOMMU_TEST_OP_ADD_RESERVED`.
    public static let addReserved: UInt32 = 1
    /// `IOMMU_TEST_OP_MOCK_DOMAIN`.
    public static let mockDomain: UInt32 = 2
    /// `IOMMU_TEST_OP_MD_CHECK_MAP`.
    public static let mdCheckMap: UInt32 = 3
    /// `IOMMU_TEST_OP_MD_CHECK_REFS`.
    public static let mdCheckRefs: UInt32 = 4
    /// `IOMMU_TEST_OP_CREATE_ACCESS`.
    public static let createAccess: UInt32 = 5
    /// `IOMMU_TEST_OP_DESTROY_ACCESS_PAGES`.
    public static let destroyAccessPages: UInt32 = 6
    /// `IOMMU_TEST_OP_ACCESS_PAGES`.
    public static let accessPages: UInt32 = 7
    /// `IOMMU_TEST_OP_ACCESS_RW`.
    public static let accessRW: UInt32 = 8
    /// `IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT`.
    public static let setTempMemoryLimit: UInt32 = 9
    /// `IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE`.
    public static let mockDomainReplace: UInt32 = 10
    /// `IOMMU_TEST_OP_ACCESS_REPLACE_IOAS`.
    public static let accessReplaceIOAS: UInt32 = 11
    /// `IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS`.
    public static let mockDomainFlags: UInt32 = 12
    /// `IOMMU_TEST_OP_DIRTY`.
    public static let dirty: UInt32 = 13
    /// `IOMMU_TEST_OP_MD_CHECK_IOTLB`.
    public static let mdCheckIOTLB: UInt32 = 14
    /// `IOMMU_TEST_OP_TRIGGER_IOPF`.
    public static let triggerIOPF: UInt32 = 15
    /// `IOMMU_TEST_OP_DEV_CHECK_CACHE`.
    public static let devCheckCache: UInt32 = 16
    /// `IOMMU_TEST_OP_TRIGGER_VEVENT`.
    public static let triggerVEvent: UInt32 = 17
    /// `IOMMU_TEST_OP_PASID_ATTACH`.
    public static let pasidAttach: UInt32 = 18
    /// `IOMMU_TEST_OP_PASID_REPLACE`.
    public static let pasidReplace: UInt32 = 19
    /// `IOMMU_TEST_OP_PASID_DETACH`.
    public static let pasidDetach: UInt32 = 20
    /// `IOMMU_TEST_OP_PASID_CHECK_HWPT`.
    public static let pasidCheckHWPT: UInt32 = 21

    /// `MOCK_APERTURE_START`.
    public static let mockApertureStart: UInt64 = 1 << 24
    /// `MOCK_APERTURE_LAST`.
    public static let mockApertureLast: UInt64 = (1 << 31) - 1
    /// `MOCK_FLAGS_ACCESS_WRITE`.
    public static let accessFlagWrite: UInt32 = 1 << 0
    /// `MOCK_FLAGS_ACCESS_SYZ`.
    public static let accessFlagSyz: UInt32 = 1 << 16
    /// `MOCK_ACCESS_RW_WRITE`.
    public static let accessRWWrite: UInt32 = 1 << 0
    /// `MOCK_ACCESS_RW_SLOW_PATH`.
    public static let accessRWSlowPath: UInt32 = 1 << 2
    /// `MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES`.
    public static let createAccessNeedsPinPages: UInt32 = 1 << 0
    /// `MOCK_FLAGS_DEVICE_NO_DIRTY`.
    public static let deviceNoDirty: UInt32 = 1 << 0
    /// `MOCK_FLAGS_DEVICE_HUGE_IOVA`.
    public static let deviceHugeIOVA: UInt32 = 1 << 1
    /// `MOCK_FLAGS_DEVICE_PASID`.
    public static let devicePasid: UInt32 = 1 << 2
    /// `MOCK_NESTED_DOMAIN_IOTLB_ID_MAX`.
    public static let nestedIOTLBIDMax: UInt32 = 3
    /// `MOCK_DEV_CACHE_ID_MAX`.
    public static let devCacheIDMax: UInt32 = 3
    /// `IOMMU_TEST_PASID_RESERVED`.
    public static let pasidReserved: UInt32 = 1024
    /// `MOCK_PASID_WIDTH`.
    public static let pasidWidth: UInt8 = 20
    /// `IOMMU_HW_INFO_TYPE_SELFTEST` (``IOMMUHWInfoType/selftest``).
    public static let hwInfoTypeSelftest = IOMMUHWInfoType.selftest
    /// `IOMMU_HW_INFO_SELFTEST_REGVAL` (the mock's `Mock.hwInfoRegval`).
    public static let hwInfoSelftestRegval = Mock.hwInfoRegval
    /// `IOMMU_HWPT_DATA_SELFTEST` (``IOMMUHWPTDataType/selftest``).
    public static let hwptDataSelftest = IOMMUHWPTDataType.selftest
    /// `IOMMU_TEST_IOTLB_DEFAULT`.
    public static let iotlbDefault: UInt32 = 0xbad_beef
    /// `IOMMU_TEST_DEV_CACHE_DEFAULT`.
    public static let devCacheDefault: UInt32 = 0xbaddad
    /// `IOMMU_HWPT_INVALIDATE_DATA_SELFTEST` (``IOMMUHWPTInvalidateDataType/selftest``).
    public static let invalidateDataSelftest = IOMMUHWPTInvalidateDataType.selftest
    /// `IOMMU_HWPT_INVALIDATE_DATA_SELFTEST_INVALID`
    /// (``IOMMUHWPTInvalidateDataType/selftestInvalid``).
    public static let invalidateDataSelftestInvalid = IOMMUHWPTInvalidateDataType.selftestInvalid
    /// `IOMMU_TEST_INVALIDATE_FLAG_ALL`.
    public static let invalidateFlagAll: UInt32 = 1 << 0
}
