import IOMMUCore

/// Constants of the kernel selftest mock IOMMU (`drivers/iommu/iommufd/iommufd_test.h`
/// and `selftest.c`), with the kernel's values.
public enum Mock {
    /// `MOCK_IO_PAGE_SIZE` = `PAGE_SIZE / 2`: the mock's only base page size. Half a CPU
    /// page on purpose, so code that assumes IOMMU pages equal CPU pages breaks.
    public static let pageSize: UInt64 = 2048
    /// `MOCK_HUGE_PAGE_SIZE` = 512 × `MOCK_IO_PAGE_SIZE`, offered only to devices created
    /// with ``MockDeviceFlags/hugeIOVA``.
    public static let hugePageSize: UInt64 = 512 * pageSize
    /// `MOCK_APERTURE_START`: first IOVA of every mock paging domain.
    public static let apertureStart: IOVA = 0x100_0000
    /// `MOCK_APERTURE_LAST`: last IOVA of every mock paging domain.
    public static let apertureLast: IOVA = 0x7fff_ffff
    /// Mock devices that can exist at once: one per device slot of the root buses
    /// 0x80–0xFF (the kernel's `mock_dev_ida` allows more; a machine of this model has no
    /// RID for them).
    public static let maxDevices = 128 * 32
    /// `MOCK_PASID_WIDTH`: PASID bits of a device created with ``MockDeviceFlags/pasid``.
    public static let pasidWidth = 20
    /// The mock IOMMU's `iommu_device.max_pasids` (1 << `MOCK_PASID_WIDTH`).
    public static let maxPasids: UInt32 = 1 << 20
    /// `IOMMU_TEST_PASID_RESERVED`: the PASID whose every second non-blocking
    /// `set_dev_pasid` fails with `ENOMEM` (see ``MockIOMMUDriver``).
    public static let reservedTestPasid: PASID = 1024
    /// `MOCK_NESTED_DOMAIN_IOTLB_NUM`: entries of a nested domain's fake IOTLB.
    public static let nestedIOTLBCount = 4
    /// `MOCK_NESTED_DOMAIN_IOTLB_ID_MAX`.
    public static let nestedIOTLBIDMax: UInt32 = 3
    /// `IOMMU_TEST_IOTLB_DEFAULT`.
    public static let iotlbDefault: UInt32 = 0xbadbeef
    /// `MOCK_DEV_CACHE_NUM`: words of a mock device's cache.
    public static let devCacheCount = 4
    /// `MOCK_DEV_CACHE_ID_MAX`.
    public static let devCacheIDMax: UInt32 = 3
    /// `IOMMU_TEST_DEV_CACHE_DEFAULT`: a mock device cache word before any invalidation.
    public static let devCacheDefault: UInt32 = 0xbaddad
    /// `IOMMU_TEST_HW_QUEUE_MAX`: HW queues of one mock vIOMMU (indexes 0 and 1).
    public static let hwQueueMax: UInt32 = 2
    /// The size of the page pair a mock vIOMMU made with data lets user space map.
    public static let viommuMMapLength: UInt64 = 2 * 4096
    /// `IOMMU_HW_INFO_SELFTEST_REGVAL`: the `test_reg` of the mock's hardware info.
    public static let hwInfoRegval: UInt32 = 0xdead_beef
    /// `IOMMU_TEST_INVALIDATE_FLAG_ALL`: a nested invalidation entry that clears every
    /// IOTLB slot and ignores its id.
    public static let invalidateFlagAll: UInt32 = 1 << 0
}

/// The flags of a mock device (`MOCK_FLAGS_DEVICE_*` of `IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS`).
/// Any other bit makes `mock_dev_create` fail with `EINVAL`.
public struct MockDeviceFlags: OptionSet, Hashable, Sendable {
    /// The raw flag bits (`MOCK_FLAGS_DEVICE_*`).
    public let rawValue: UInt32
    /// Wraps raw flag bits (unknown bits are refused when a device is made).
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// `MOCK_FLAGS_DEVICE_NO_DIRTY` (1): no dirty tracking; dirty-tracking domains are
    /// refused (`EOPNOTSUPP` to allocate, `EINVAL` to attach).
    public static let noDirty = MockDeviceFlags(rawValue: 1)
    /// `MOCK_FLAGS_DEVICE_HUGE_IOVA` (2): paging domains also offer `MOCK_HUGE_PAGE_SIZE`.
    public static let hugeIOVA = MockDeviceFlags(rawValue: 2)
    /// `MOCK_FLAGS_DEVICE_PASID` (4): PASID width `MOCK_PASID_WIDTH` (20); without it 0.
    public static let pasid = MockDeviceFlags(rawValue: 4)
    /// Every bit `mock_dev_create` accepts.
    public static let valid: MockDeviceFlags = [.noDirty, .hugeIOVA, .pasid]
}

extension FaultReason {
    // The kernel's mock has no hardware and so no fault codes; these are the model's own,
    // numbered from 1, one per way the mock hardware can refuse a request.

    /// Mock fault 0x1: the RID (or PASID) entry is blocked.
    public static let mockBlocked = FaultReason(code: 0x1, text: "mock: entry is blocked")
    /// Mock fault 0x2: no domain is programmed for the request's PASID.
    public static let mockPasidNotAttached = FaultReason(code: 0x2, text: "mock: PASID not attached")
    /// Mock fault 0x3: the IOVA has no entry in the domain's table.
    public static let mockNotMapped = FaultReason(code: 0x3, text: "mock: IOVA not mapped")
    /// Mock fault 0x4: a write to an entry without `IOMMU_WRITE`.
    public static let mockWriteProtected = FaultReason(code: 0x4, text: "mock: write to a read-only mapping")
    /// Mock fault 0x5: a read of an entry without `IOMMU_READ`.
    public static let mockReadProtected = FaultReason(code: 0x5, text: "mock: read of a write-only mapping")
}
