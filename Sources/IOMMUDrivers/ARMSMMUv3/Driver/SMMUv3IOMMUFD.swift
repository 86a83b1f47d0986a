import IOMMUCore
import IOMMUFDDriver

// The SMMUv3 driver's side of iommufd (`arm-smmu-v3-iommufd.c`): its hardware info and
// the nested-domain data, decoded from the uAPI's vendor structures.
extension ArmSMMUv3Driver: IOMMUFDDriverOps {
    /// `arm_smmu_hw_info`: `struct iommu_hw_info_arm_smmuv3` with the SMMU's IDR0-IDR5,
    /// IIDR and AIDR, as `IOMMU_HW_INFO_TYPE_ARM_SMMUV3`.
    /// - Throws: `EOPNOTSUPP` for a type other than DEFAULT or ARM_SMMUV3 (the SMMU has no
    ///   implementation-specific info); `ENODEV` for a device not behind this driver.
    public func hwInfo(_ dev: PCIDevice, type: UInt32) throws(Errno) -> (type: UInt32, data: [UInt8]) {
        guard type == IOMMUHWInfoType.default || type == IOMMUHWInfoType.armSMMUv3 else { throw .notSupported }
        guard let unit = dev.iommu as? ArmSMMUv3, unit.smmuDriver === self else { throw .noDevice }
        let regs = unit.smmu.idRegisters
        return (IOMMUHWInfoType.armSMMUv3, IOMMUHWInfoARMSMMUv3(idr: regs.idr, iidr: regs.iidr, aidr: regs.aidr).bytes)
    }

    /// `arm_smmu_domain_alloc_paging_flags` takes no user data.
    /// - Throws: `EOPNOTSUPP`.
    public func pagingUserData(_ dev: PCIDevice, _ data: IOMMUUserData) throws(Errno) -> [UInt8] {
        throw .notSupported
    }

    /// The user-data step of a nested allocation: `iommu_copy_struct_from_user(&arg,
    /// user_data, IOMMU_HWPT_DATA_ARM_SMMUV3, ste)`.
    /// - Throws: `EINVAL` for another data type or fewer than 16 bytes; `EFAULT`; `E2BIG`
    ///   for a longer structure with non-zero bytes past `ste`.
    public func nestedUserData(_ dev: PCIDevice, _ data: IOMMUUserData) throws(Errno) -> [UInt8] {
        let bytes = try data.copy(expectedType: IOMMUHWPTDataType.armSMMUv3,
                                  minLength: IOMMUHWPTARMSMMUv3.offsetOfEnd("ste"), maxLength: Int(UInt32.max))
        guard bytes[IOMMUHWPTARMSMMUv3.size...].allSatisfy({ $0 == 0 }) else { throw .tooBig }
        return Array(bytes.prefix(IOMMUHWPTARMSMMUv3.size))
    }

    /// SMMUv3 nested domains have no `cache_invalidate_user`: a guest's invalidations go
    /// through the vIOMMU.
    /// - Throws: `EOPNOTSUPP`.
    public func cacheInvalidateUser(_ domain: IOMMUDomain, _ array: IOMMUUserDataArray,
                                    handled: inout UInt32) throws(Errno) {
        handled = 0
        throw .notSupported
    }
}
