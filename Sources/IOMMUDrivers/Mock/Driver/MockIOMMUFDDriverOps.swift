import IOMMUCore
import IOMMUFDDriver

// The mock driver's side of iommufd: its hardware info, nested user data and user cache
// invalidation, decoded from the selftest's vendor structures (`iommufd_test.h`).
extension MockIOMMUDriver: IOMMUFDDriverOps {
    /// `mock_domain_hw_info`: `struct iommu_test_hw_info {flags 0, test_reg
    /// IOMMU_HW_INFO_SELFTEST_REGVAL}` as `IOMMU_HW_INFO_TYPE_SELFTEST`.
    /// - Throws: `EOPNOTSUPP` for a type other than DEFAULT or SELFTEST.
    public func hwInfo(_ dev: PCIDevice, type: UInt32) throws(Errno) -> (type: UInt32, data: [UInt8]) {
        guard type == IOMMUHWInfoType.default || type == IOMMUHWInfoType.selftest else {
            throw .notSupported.from("mock_domain_hw_info", "hw_info type \(type) is neither DEFAULT nor SELFTEST")
        }
        return (IOMMUHWInfoType.selftest, IOMMUTestHWInfo(flags: 0, testReg: Mock.hwInfoRegval).bytes)
    }

    /// `mock_domain_alloc_paging_flags` takes no user data: `EOPNOTSUPP` before any copy.
    public func pagingUserData(_ dev: PCIDevice, _ data: IOMMUUserData) throws(Errno) -> [UInt8] {
        throw .notSupported.from("mock_domain_alloc_paging_flags", "mock paging domains take no user data")
    }

    /// The user-data checks of `mock_domain_alloc_nested`: `EOPNOTSUPP` unless
    /// `IOMMU_HWPT_DATA_SELFTEST`; then `iommu_copy_struct_from_user` of `struct
    /// iommu_hwpt_selftest` (`EINVAL` below 4 bytes, `EFAULT`, `E2BIG` non-zero tail).
    public func nestedUserData(_ dev: PCIDevice, _ data: IOMMUUserData) throws(Errno) -> [UInt8] {
        guard data.type == IOMMUHWPTDataType.selftest else { throw .notSupported.from("mock_domain_alloc_nested", "data type \(data.type) is not IOMMU_HWPT_DATA_SELFTEST") }
        let bytes = try data.copy(expectedType: IOMMUHWPTDataType.selftest, minLength: IOMMUHWPTSelftest.size,
                                  maxLength: Int(UInt32.max))
        guard bytes[IOMMUHWPTSelftest.size...].allSatisfy({ $0 == 0 }) else { throw .tooBig.from("mock_domain_alloc_nested", "non-zero bytes past struct iommu_hwpt_selftest") }
        return Array(bytes.prefix(IOMMUHWPTSelftest.size))
    }

    /// `mock_domain_cache_invalidate_user`: `EINVAL` unless
    /// `IOMMU_HWPT_INVALIDATE_DATA_SELFTEST`; each 8-byte entry in order, stopping at the
    /// first bad one (`EINVAL` length or id, `EOPNOTSUPP` flags, `EFAULT`).
    public func cacheInvalidateUser(_ domain: IOMMUDomain, _ array: IOMMUUserDataArray,
                                    handled: inout UInt32) throws(Errno) {
        handled = 0
        guard let d = domain as? MockNestedDomain else { throw .notSupported.from("mock_domain_cache_invalidate_user", "\(domain) is not a mock nested domain") }
        guard array.type == IOMMUHWPTInvalidateDataType.selftest else { throw .invalidArgument.from("mock_domain_cache_invalidate_user", "data type \(array.type) is not IOMMU_HWPT_INVALIDATE_DATA_SELFTEST") }
        for i in 0..<Int(array.entryNum) {
            let raw = try array.copyEntry(i, expectedType: IOMMUHWPTInvalidateDataType.selftest,
                                          minLength: IOMMUHWPTInvalidateSelftest.size,
                                          maxLength: IOMMUHWPTInvalidateSelftest.size)
            let e = IOMMUHWPTInvalidateSelftest(bytes: raw)
            var n = 0
            try d.cacheInvalidateUser([MockNestedDomain.Invalidation(flags: e.flags, iotlbID: e.iotlbId)], processed: &n)
            handled += UInt32(n)
        }
    }
}
