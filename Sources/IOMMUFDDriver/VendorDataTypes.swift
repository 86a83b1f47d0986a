/// `enum iommu_hw_info_type` (`include/uapi/linux/iommufd.h`), plus the selftest mock's
/// type (`iommufd_test.h`): the vendor structure `IOMMU_GET_HW_INFO` returns, as chosen
/// by a driver's ``IOMMUFDDriverOps/hwInfo(_:type:)``.
public enum IOMMUHWInfoType {
    /// `IOMMU_HW_INFO_TYPE_DEFAULT` (= `IOMMU_HW_INFO_TYPE_NONE`): the caller asks for
    /// the driver's own type.
    public static let `default`: UInt32 = 0
    /// `IOMMU_HW_INFO_TYPE_INTEL_VTD`: `struct iommu_hw_info_vtd`.
    public static let intelVTd: UInt32 = 1
    /// `IOMMU_HW_INFO_TYPE_ARM_SMMUV3`: `struct iommu_hw_info_arm_smmuv3`.
    public static let armSMMUv3: UInt32 = 2
    /// `IOMMU_HW_INFO_TYPE_TEGRA241_CMDQV`: `struct iommu_hw_info_tegra241_cmdqv`.
    public static let tegra241CMDQV: UInt32 = 3
    /// `IOMMU_HW_INFO_TYPE_SELFTEST`: ``IOMMUTestHWInfo``, the selftest mock's.
    public static let selftest: UInt32 = 0xfeed_beef
}

/// `enum iommu_hwpt_data_type` (`include/uapi/linux/iommufd.h`), plus the selftest
/// mock's type: the vendor structure behind `IOMMU_HWPT_ALLOC`'s `data_uptr`, handed to
/// the driver as ``IOMMUUserData``.
public enum IOMMUHWPTDataType {
    /// `IOMMU_HWPT_DATA_NONE`: no vendor data (a paging HWPT).
    public static let none: UInt32 = 0
    /// `IOMMU_HWPT_DATA_VTD_S1`: `struct iommu_hwpt_vtd_s1`, a VT-d first stage.
    public static let vtdS1: UInt32 = 1
    /// `IOMMU_HWPT_DATA_ARM_SMMUV3`: `struct iommu_hwpt_arm_smmuv3`, a nested STE.
    public static let armSMMUv3: UInt32 = 2
    /// `IOMMU_HWPT_DATA_SELFTEST`: ``IOMMUHWPTSelftest``, the mock's nested domain.
    public static let selftest: UInt32 = 0xdead
}

/// `enum iommu_hwpt_invalidate_data_type` (`include/uapi/linux/iommufd.h`), plus the
/// selftest mock's types: the entries of `IOMMU_HWPT_INVALIDATE`, handed to the driver
/// as ``IOMMUUserDataArray``.
public enum IOMMUHWPTInvalidateDataType {
    /// `IOMMU_HWPT_INVALIDATE_DATA_VTD_S1`: `struct iommu_hwpt_vtd_s1_invalidate`.
    public static let vtdS1: UInt32 = 0
    /// `IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3`: `struct iommu_viommu_arm_smmuv3_invalidate`.
    public static let armSMMUv3: UInt32 = 1
    /// `IOMMU_HWPT_INVALIDATE_DATA_SELFTEST`: ``IOMMUHWPTInvalidateSelftest``.
    public static let selftest: UInt32 = 0xdead_beef
    /// `IOMMU_HWPT_INVALIDATE_DATA_SELFTEST_INVALID`: a type the mock refuses.
    public static let selftestInvalid: UInt32 = 0xdad_beef
}

extension IOMMUHWPTInvalidateDataType {
    /// `IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST`: ``IOMMUVIOMMUInvalidateSelftest`` entries for
    /// the mock vIOMMU (the same value as the nested-HWPT selftest type).
    public static let viommuSelftest: UInt32 = 0xdead_beef
    /// `IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST_INVALID`: a type the mock vIOMMU refuses.
    public static let viommuSelftestInvalid: UInt32 = 0xdad_beef
}

/// `enum iommu_viommu_type` (`include/uapi/linux/iommufd.h`), plus the selftest mock's:
/// what `IOMMU_VIOMMU_ALLOC` makes, and which data it takes.
public enum IOMMUVIOMMUType {
    /// `IOMMU_VIOMMU_TYPE_DEFAULT`: reserved (`EOPNOTSUPP`).
    public static let `default`: UInt32 = 0
    /// `IOMMU_VIOMMU_TYPE_ARM_SMMUV3`: a vSMMU.
    public static let armSMMUv3: UInt32 = 1
    /// `IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV`: a vSMMU with Tegra241 CMDQV.
    public static let tegra241CMDQV: UInt32 = 2
    /// `IOMMU_VIOMMU_TYPE_SELFTEST`: the mock vIOMMU, data ``IOMMUVIOMMUSelftest``.
    public static let selftest: UInt32 = 0xdead_beef
}

/// `enum iommu_veventq_type`, plus the selftest mock's: what a vEVENTQ carries.
public enum IOMMUVEventQType {
    /// `IOMMU_VEVENTQ_TYPE_DEFAULT`: reserved (`EOPNOTSUPP`).
    public static let `default`: UInt32 = 0
    /// `IOMMU_VEVENTQ_TYPE_ARM_SMMUV3`: `struct iommu_vevent_arm_smmuv3` records.
    public static let armSMMUv3: UInt32 = 1
    /// `IOMMU_VEVENTQ_TYPE_TEGRA241_CMDQV`: `struct iommu_vevent_tegra241_cmdqv` records.
    public static let tegra241CMDQV: UInt32 = 2
    /// `IOMMU_VEVENTQ_TYPE_SELFTEST`: ``IOMMUVIOMMUEventSelftest`` records.
    public static let selftest: UInt32 = 0xbeef_beef
}

/// `enum iommu_hw_queue_type`, plus the selftest mock's.
public enum IOMMUHWQueueType {
    /// `IOMMU_HW_QUEUE_TYPE_DEFAULT`: reserved (`EOPNOTSUPP`).
    public static let `default`: UInt32 = 0
    /// `IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV`: a Tegra241 VCMDQ.
    public static let tegra241CMDQV: UInt32 = 1
    /// `IOMMU_HW_QUEUE_TYPE_SELFTEST`: a mock queue.
    public static let selftest: UInt32 = 0xdead_beef
}
