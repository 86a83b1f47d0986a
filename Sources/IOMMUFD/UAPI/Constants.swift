/// The flag and enum values of `include/uapi/linux/iommufd.h` that the handlers check.
public enum IOMMUFDConstant {
    /// `IOMMU_IOAS_MAP_FIXED_IOVA`.
    public static let mapFixedIOVA: UInt32 = 1 << 0
    /// `IOMMU_IOAS_MAP_WRITEABLE`.
    public static let mapWriteable: UInt32 = 1 << 1
    /// `IOMMU_IOAS_MAP_READABLE`.
    public static let mapReadable: UInt32 = 1 << 2
    /// `IOMMU_OPTION_RLIMIT_MODE`.
    public static let optionRlimitMode: UInt32 = 0
    /// `IOMMU_OPTION_HUGE_PAGES`.
    public static let optionHugePages: UInt32 = 1
    /// `IOMMU_OPTION_OP_SET`.
    public static let optionOpSet: UInt16 = 0
    /// `IOMMU_OPTION_OP_GET`.
    public static let optionOpGet: UInt16 = 1
    /// `IOMMU_VFIO_IOAS_GET`.
    public static let vfioIOASGet: UInt16 = 0
    /// `IOMMU_VFIO_IOAS_SET`.
    public static let vfioIOASSet: UInt16 = 1
    /// `IOMMU_VFIO_IOAS_CLEAR`.
    public static let vfioIOASClear: UInt16 = 2
    /// `IOMMU_HWPT_ALLOC_NEST_PARENT`.
    public static let hwptAllocNestParent: UInt32 = 1 << 0
    /// `IOMMU_HWPT_ALLOC_DIRTY_TRACKING`.
    public static let hwptAllocDirtyTracking: UInt32 = 1 << 1
    /// `IOMMU_HWPT_FAULT_ID_VALID`.
    public static let hwptFaultIDValid: UInt32 = 1 << 2
    /// `IOMMU_HWPT_ALLOC_PASID`.
    public static let hwptAllocPasid: UInt32 = 1 << 3
    /// `IOMMU_HWPT_DATA_NONE` (``/IOMMUFDDriver/IOMMUHWPTDataType/none``).
    public static let hwptDataNone = IOMMUHWPTDataType.none
    /// `IOMMU_HW_INFO_FLAG_INPUT_TYPE`.
    public static let hwInfoFlagInputType: UInt32 = 1 << 0
    /// `IOMMU_HW_INFO_TYPE_DEFAULT` (= `IOMMU_HW_INFO_TYPE_NONE`, ``/IOMMUFDDriver/IOMMUHWInfoType/default``).
    public static let hwInfoTypeDefault = IOMMUHWInfoType.default
    /// `IOMMU_HW_CAP_DIRTY_TRACKING`.
    public static let hwCapDirtyTracking: UInt64 = 1 << 0
    /// `IOMMU_HW_CAP_PCI_PASID_EXEC`.
    public static let hwCapPciPasidExec: UInt64 = 1 << 1
    /// `IOMMU_HW_CAP_PCI_PASID_PRIV`.
    public static let hwCapPciPasidPriv: UInt64 = 1 << 2
    /// `IOMMU_HWPT_DIRTY_TRACKING_ENABLE`.
    public static let dirtyTrackingEnable: UInt32 = 1 << 0
    /// `IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR`.
    public static let getDirtyBitmapNoClear: UInt32 = 1 << 0
    /// `IOMMU_PGFAULT_FLAGS_PASID_VALID`.
    public static let pgfaultFlagPasidValid: UInt32 = 1 << 0
    /// `IOMMU_PGFAULT_FLAGS_LAST_PAGE`.
    public static let pgfaultFlagLastPage: UInt32 = 1 << 1
    /// `IOMMUFD_PAGE_RESP_SUCCESS`.
    public static let pageRespSuccess: UInt32 = 0
    /// `IOMMUFD_PAGE_RESP_INVALID`.
    public static let pageRespInvalid: UInt32 = 1
    /// `IOMMU_VEVENTQ_FLAG_LOST_EVENTS`: a vEVENTQ header standing for dropped events.
    public static let veventqFlagLostEvents: UInt32 = 1 << 0
}
