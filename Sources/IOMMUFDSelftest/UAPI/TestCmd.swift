import IOMMUDrivers

/// `struct iommu_test_cmd` (72 bytes, min_size 68 = `offsetofend(last)`): argument of
/// `IOMMU_TEST_CMD` (`drivers/iommu/iommufd/iommufd_test.h`). `__reserved` is not checked
/// by the kernel. The 48-byte union at offset 16 is kept as bytes; the typed members are
/// the nested ``IOMMUTestPayload`` structs.
public struct IOMMUTestCmd: UAPIStruct, Hashable {
    /// `sizeof(struct iommu_test_cmd)`.
    public static let size = 72
    /// `offsetofend(struct iommu_test_cmd, last)`.
    public static let minSize = 68
    /// Offset of the union.
    public static let unionOffset = 16
    /// Size of the union.
    public static let unionSize = 48
    /// `size` (u32 @0).
    public var size: UInt32 = 72
    /// `op` (u32 @4): `IOMMU_TEST_OP_*`.
    public var op: UInt32
    /// `id` (u32 @8): the object the op works on.
    public var id: UInt32
    /// `__reserved` (u32 @12): ignored.
    public var reserved: UInt32
    /// The union (48 bytes @16).
    public var payload: UAPIBytes
    /// `last` (u32 @64).
    public var last: UInt32

    /// A command with a typed union member.
    public init<P: IOMMUTestPayload>(op: UInt32, id: UInt32 = 0, _ member: P) {
        self.op = op
        self.id = id
        reserved = 0
        var p = UAPIBytes(count: Self.unionSize)
        member.encode(into: &p)
        payload = p
        last = 0
    }

    /// A command with an all-zero union.
    public init(op: UInt32 = 0, id: UInt32 = 0) {
        self.op = op
        self.id = id
        reserved = 0
        payload = UAPIBytes(count: Self.unionSize)
        last = 0
    }

    /// Decodes at the kernel offsets.
    public init(_ b: UAPIBytes) {
        size = b.u32(0)
        op = b.u32(4)
        id = b.u32(8)
        reserved = b.u32(12)
        var p = UAPIBytes(count: Self.unionSize)
        for i in 0..<Self.unionSize where Self.unionOffset + i < b.count { p.bytes[i] = b.bytes[Self.unionOffset + i] }
        payload = p
        last = b.u32(64)
    }

    /// Encodes at the kernel offsets.
    public func encode(into b: inout UAPIBytes) {
        b.setU32(0, size)
        b.setU32(4, op)
        b.setU32(8, id)
        b.setU32(12, reserved)
        for i in 0..<Self.unionSize where Self.unionOffset + i < b.count { b.bytes[Self.unionOffset + i] = payload.bytes[i] }
        b.setU32(64, last)
    }

    /// The union read as member `P`.
    public func member<P: IOMMUTestPayload>(_: P.Type) -> P { P(payload) }

    /// Replaces the union with member `m`.
    public mutating func setMember<P: IOMMUTestPayload>(_ m: P) {
        var p = UAPIBytes(count: Self.unionSize)
        m.encode(into: &p)
        payload = p
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
