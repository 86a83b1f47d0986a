import IOMMUCore

/// What `IOMMU_TEST_CMD` needs from the selftest mock IOMMU
/// (`drivers/iommu/iommufd/selftest.c`), so that IOMMUFD never imports a vendor. The Mock
/// vendor implements it; a context built with a backend has `IOMMU_TEST_CMD` in its
/// ioctl table.
public protocol IOMMUFDTestBackend: AnyObject, Sendable {
    /// `mock_dev_create(dev_flags)`: a new mock PCI device in its own group, probed on
    /// `machine`.
    /// - Throws: `EINVAL` for flags outside `MOCK_FLAGS_DEVICE_*`; probe errors.
    func createMockDevice(on machine: Machine, flags: UInt32) throws(Errno) -> PCIDevice

    /// `mock_dev_destroy`: release and remove the device.
    func destroyMockDevice(_ dev: PCIDevice, on machine: Machine)

    /// `MOCK_IO_PAGE_SIZE`: the mock's smallest IO page (PAGE_SIZE / 2).
    var mockPageSize: UInt64 { get }

    /// Whether `domain` is a mock paging domain (`IOMMU_TEST_OP_MD_CHECK_MAP` needs one).
    func isMockPagingDomain(_ domain: IOMMUDomain) -> Bool

    /// The physical address behind `iova` in a mock paging domain's table, nil if
    /// unmapped (`mock_domain->pt` lookup).
    func mockTranslate(_ domain: IOMMUDomain, iova: UInt64) -> UInt64?

    /// `IOMMU_TEST_OP_DIRTY`: mark the mapped IOPTEs under the set bits of `bitmap`
    /// (one bit per `pageSize` from `iova`) dirty; returns how many entries were marked.
    /// - Throws: `EINVAL` when dirty tracking is off or the domain is not a mock domain.
    func markDirty(_ domain: IOMMUDomain, iova: UInt64, length: UInt64, pageSize: UInt64,
                   bitmap: [UInt8]) throws(Errno) -> UInt64

    /// `mock_nested->iotlb[id]`.
    /// - Throws: `EINVAL` not a mock nested domain or `id > MOCK_NESTED_DOMAIN_IOTLB_ID_MAX`.
    func nestedIOTLB(_ domain: IOMMUDomain, id: UInt32) throws(Errno) -> UInt32

    /// `mock_dev->cache[id]`.
    /// - Throws: `EINVAL` not a mock device or `id > MOCK_DEV_CACHE_ID_MAX`.
    func deviceCache(_ dev: PCIDevice, id: UInt32) throws(Errno) -> UInt32
}
