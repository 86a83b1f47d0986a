import IOMMUCore
import IOMMUDrivers
import IOMMUFD

/// The Mock vendor as the backend of `IOMMU_TEST_CMD` (`drivers/iommu/iommufd/selftest.c`):
/// mock devices on one mock IOMMU unit, and clear-box reads of mock domains. Passed as
/// `testBackend` when a context is opened, it puts `IOMMU_TEST_CMD` in the context's
/// ioctl table.
public final class MockSelftestBackend: IOMMUFDTestCommandHandler, @unchecked Sendable {
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

    /// `sizeof(struct iommu_test_cmd)`.
    package var commandSize: Int { IOMMUTestCmd.size }
    /// `offsetofend(struct iommu_test_cmd, last)`.
    package var commandMinSize: Int { IOMMUTestCmd.minSize }

    /// `iommufd_test(ucmd)`: see `ioctlTestCmd`.
    package func testCommand(_ ctx: IOMMUFD, _ ucmd: inout UCmd) throws(Errno) -> Int32 {
        try ctx.ioctlTestCmd(self, &ucmd)
    }

    /// `mock_dev_create`: a mock PCI device with `MOCK_FLAGS_DEVICE_*` flags, alone in
    /// its group, numbered with the lowest free number (`ida_alloc`).
    /// - Throws: `EINVAL` for unknown flags; `ENOSPC` when every mock device number is in
    ///   use (see ``MockIOMMU/makeDevice(on:flags:ats:reservedRegions:)``).
    public func createMockDevice(on machine: Machine, flags: UInt32) throws(Errno) -> PCIDevice {
        let f = MockDeviceFlags(rawValue: flags)
        guard f.isSubset(of: .valid) else { throw .invalidArgument }
        return try unit.makeDevice(on: machine, flags: f)
    }

    /// `mock_dev_destroy`: `device_unregister`, which releases the device from the mock
    /// IOMMU (freeing its number, `mock_dev_release`) and takes it off the machine.
    public func destroyMockDevice(_ dev: PCIDevice, on machine: Machine) {
        machine.removeDevice(dev)
    }

    /// `MOCK_IO_PAGE_SIZE`.
    public var mockPageSize: UInt64 { Mock.pageSize }

    /// A paging domain of the mock driver.
    public func isMockPagingDomain(_ domain: IOMMUDomain) -> Bool {
        (domain as? MockDomain)?.owner === driver
    }

    /// The mock table's physical address for `iova`.
    public func mockTranslate(_ domain: IOMMUDomain, iova: IOVA) -> PhysicalAddress? {
        guard let d = domain as? MockDomain, let pte = d.table.entry(iova) else { return nil }
        return pte.physical + iova.offset(within: Mock.pageSize)
    }

    /// `iommufd_test_dirty`: marks the mock page at each set bit's IOVA; counts mapped ones.
    /// - Throws: `EINVAL` when tracking is off or the domain is not a mock domain.
    public func markDirty(_ domain: IOMMUDomain, iova: UInt64, length: UInt64, pageSize: UInt64,
                          bitmap: [UInt8]) throws(Errno) -> UInt64 {
        guard let d = domain as? MockDomain else { throw .invalidArgument }
        guard d.isDirtyTracking else { throw .invalidArgument }
        var count: UInt64 = 0
        for bit in 0..<Int(length / pageSize) where bitmap[bit / 8] & (1 << UInt8(bit % 8)) != 0 {
            let at = iova &+ UInt64(bit) &* pageSize
            count += UInt64(try d.markDirty(iova: IOVA(rawValue: at - at % Mock.pageSize), length: Mock.pageSize))
        }
        return count
    }

    /// `mock_nested->iotlb[id]`.
    public func nestedIOTLB(_ domain: IOMMUDomain, id: UInt32) throws(Errno) -> UInt32 {
        guard let d = domain as? MockNestedDomain, id <= Mock.nestedIOTLBIDMax else { throw .invalidArgument }
        return d.iotlb[Int(id)]
    }

    /// `mock_dev->cache[id]`: `IOMMU_TEST_DEV_CACHE_DEFAULT` until a vIOMMU invalidation
    /// clears it.
    /// - Throws: `EINVAL` an id above `MOCK_DEV_CACHE_ID_MAX`, or not a mock device.
    public func deviceCache(_ dev: PCIDevice, id: UInt32) throws(Errno) -> UInt32 {
        guard let state = driver.state(of: dev), id <= Mock.devCacheIDMax else { throw .invalidArgument }
        return state.cache[Int(id)]
    }

    /// `iommufd_test_trigger_vevent`: a `struct iommu_viommu_event_selftest` with the
    /// device's virtual ID, reported to the vIOMMU of the nested domain its RID is
    /// attached to.
    /// - Throws: `ENOENT` when the device is attached through no vIOMMU, or its virtual ID
    ///   is 0 (the kernel mock takes 0 for "none"); `EOPNOTSUPP` no vEVENTQ of the
    ///   selftest type.
    public func triggerVirtualEvent(_ dev: PCIDevice) throws(Errno) {
        guard let state = driver.state(of: dev), let viommu = state.viommu, state.virtualID != 0 else {
            throw .noEntry
        }
        let event = IOMMUVIOMMUEventSelftest(virtId: UInt32(truncatingIfNeeded: state.virtualID))
        try viommu.core.reportEvent(type: IOMMUVEventQType.selftest, data: event.bytes)
    }
}
