import IOMMUCore
import IOMMUFD

/// The Mock vendor as the backend of `IOMMU_TEST_CMD` (`drivers/iommu/iommufd/selftest.c`):
/// mock devices on one mock IOMMU unit, and clear-box reads of mock domains.
public final class MockSelftestBackend: IOMMUFDTestBackend, @unchecked Sendable {
    /// The mock driver.
    public let driver: MockIOMMUDriver
    /// The unit every mock device sits behind.
    public let unit: MockIOMMU

    /// A backend with its own mock driver and unit, registered on `machine`.
    public init(machine: Machine) {
        driver = MockIOMMUDriver()
        unit = MockIOMMU(driver: driver)
        machine.addIOMMU(unit)
    }

    /// `mock_dev_create`: a mock PCI device with `MOCK_FLAGS_DEVICE_*` flags, alone in
    /// its group. `EINVAL` for unknown flags.
    public func createMockDevice(on machine: Machine, flags: UInt32) throws(Errno) -> PCIDevice {
        let f = MockDeviceFlags(rawValue: flags)
        guard f.isSubset(of: .valid) else { throw .invalidArgument }
        return try unit.makeDevice(on: machine, flags: f)
    }

    /// `mock_dev_destroy`: `iommu_release_device`.
    public func destroyMockDevice(_ dev: PCIDevice, on machine: Machine) {
        machine.iommu.releaseDevice(dev)
    }

    /// `MOCK_IO_PAGE_SIZE`.
    public var mockPageSize: UInt64 { Mock.pageSize }

    /// A paging domain of the mock driver.
    public func isMockPagingDomain(_ domain: IOMMUDomain) -> Bool {
        (domain as? MockDomain)?.owner === driver
    }

    /// The mock table's physical address for `iova`.
    public func mockTranslate(_ domain: IOMMUDomain, iova: UInt64) -> UInt64? {
        guard let d = domain as? MockDomain, let pte = d.table.entry(iova) else { return nil }
        return pte.physical + iova % Mock.pageSize
    }

    /// `iommufd_test_dirty`: marks the mock page at each set bit's IOVA; counts mapped ones.
    /// - Throws: `EINVAL` when tracking is off or the domain is not a mock domain.
    public func markDirty(_ domain: IOMMUDomain, iova: UInt64, length: UInt64, pageSize: UInt64,
                          bitmap: [UInt8]) throws(Errno) -> UInt64 {
        guard let d = domain as? MockDomain else { throw .invalidArgument }
        guard d.isDirtyTracking else { throw .invalidArgument }
        var count: UInt64 = 0
        for bit in 0..<Int(length / pageSize) where bitmap[bit / 8] & (1 << UInt8(bit % 8)) != 0 {
            let at = iova + UInt64(bit) * pageSize
            count += UInt64(try d.markDirty(iova: at - at % Mock.pageSize, length: Mock.pageSize))
        }
        return count
    }

    /// `mock_nested->iotlb[id]`.
    public func nestedIOTLB(_ domain: IOMMUDomain, id: UInt32) throws(Errno) -> UInt32 {
        guard let d = domain as? MockNestedDomain, id <= Mock.nestedIOTLBIDMax else { throw .invalidArgument }
        return d.iotlb[Int(id)]
    }

    /// `mock_dev->cache[id]`. Only vIOMMU invalidation changes these words, and this model
    /// has no vIOMMU, so they keep `IOMMU_TEST_DEV_CACHE_DEFAULT`.
    public func deviceCache(_ dev: PCIDevice, id: UInt32) throws(Errno) -> UInt32 {
        guard driver.state(of: dev) != nil, id <= 3 else { throw .invalidArgument }
        return IOMMUTestOp.devCacheDefault
    }
}

extension MockIOMMUDriver: IOMMUFDDriverOps {
    /// `mock_domain_hw_info`: `struct iommu_test_hw_info {flags 0, test_reg
    /// IOMMU_HW_INFO_SELFTEST_REGVAL}` as `IOMMU_HW_INFO_TYPE_SELFTEST`.
    /// - Throws: `EOPNOTSUPP` for a type other than DEFAULT or SELFTEST.
    public func hwInfo(_ dev: PCIDevice, type: UInt32) throws(Errno) -> (type: UInt32, data: [UInt8]) {
        guard type == IOMMUFDConstant.hwInfoTypeDefault || type == IOMMUTestOp.hwInfoTypeSelftest else {
            throw .notSupported
        }
        return (IOMMUTestOp.hwInfoTypeSelftest, IOMMUTestHWInfo(flags: 0, testReg: IOMMUTestOp.hwInfoSelftestRegval).bytes)
    }

    /// `mock_domain_alloc_paging_flags` takes no user data: `EOPNOTSUPP` before any copy.
    public func pagingUserData(_ dev: PCIDevice, _ data: IOMMUUserData) throws(Errno) -> [UInt8] {
        throw .notSupported
    }

    /// The user-data checks of `mock_domain_alloc_nested`: `EOPNOTSUPP` unless
    /// `IOMMU_HWPT_DATA_SELFTEST`; then `iommu_copy_struct_from_user` of `struct
    /// iommu_hwpt_selftest` (`EINVAL` below 4 bytes, `EFAULT`, `E2BIG` non-zero tail).
    public func nestedUserData(_ dev: PCIDevice, _ data: IOMMUUserData) throws(Errno) -> [UInt8] {
        guard data.type == IOMMUTestOp.hwptDataSelftest else { throw .notSupported }
        let bytes = try data.copy(expectedType: IOMMUTestOp.hwptDataSelftest, minLength: IOMMUHWPTSelftest.size,
                                  maxLength: Int(UInt32.max))
        guard bytes[IOMMUHWPTSelftest.size...].allSatisfy({ $0 == 0 }) else { throw .tooBig }
        return Array(bytes.prefix(IOMMUHWPTSelftest.size))
    }

    /// `mock_domain_cache_invalidate_user`: `EINVAL` unless
    /// `IOMMU_HWPT_INVALIDATE_DATA_SELFTEST`; each 8-byte entry in order, stopping at the
    /// first bad one (`EINVAL` length or id, `EOPNOTSUPP` flags, `EFAULT`).
    public func cacheInvalidateUser(_ domain: IOMMUDomain, _ array: IOMMUUserDataArray,
                                    handled: inout UInt32) throws(Errno) {
        handled = 0
        guard let d = domain as? MockNestedDomain else { throw .notSupported }
        guard array.type == IOMMUTestOp.invalidateDataSelftest else { throw .invalidArgument }
        for i in 0..<Int(array.entryNum) {
            let raw = try array.copyEntry(i, expectedType: IOMMUTestOp.invalidateDataSelftest,
                                          minLength: IOMMUHWPTInvalidateSelftest.size,
                                          maxLength: IOMMUHWPTInvalidateSelftest.size)
            let e = IOMMUHWPTInvalidateSelftest(bytes: raw)
            var n = 0
            try d.cacheInvalidateUser([MockNestedDomain.Invalidation(flags: e.flags, iotlbID: e.iotlbId)], processed: &n)
            handled += UInt32(n)
        }
    }
}
