/// iommufd ioctl command numbers (`include/uapi/linux/iommufd.h`).
///
/// Every command is `_IO(IOMMUFD_TYPE, nr)`: type `';'` (0x3B), no direction or size
/// bits, so the number is `0x3B00 | nr`. iommufd commands start at
/// `IOMMUFD_CMD_BASE` (0x80); the VFIO type1 compatibility commands share the type with
/// `VFIO_BASE` (100).
public enum IOMMUFDCommand {
    /// `IOMMUFD_TYPE`: `';'`.
    public static let type: UInt32 = 0x3B
    /// `IOMMUFD_CMD_BASE`.
    public static let base: UInt32 = 0x80
    /// `_IO(type, nr)`.
    public static func io(_ nr: UInt32) -> UInt32 { (type << 8) | nr }
    /// `_IOC_NR(cmd)`.
    public static func nr(_ cmd: UInt32) -> UInt32 { cmd & 0xff }

    /// `IOMMU_DESTROY` (0x80).
    public static let destroy = io(0x80)
    /// `IOMMU_IOAS_ALLOC` (0x81).
    public static let ioasAlloc = io(0x81)
    /// `IOMMU_IOAS_ALLOW_IOVAS` (0x82).
    public static let ioasAllowIOVAs = io(0x82)
    /// `IOMMU_IOAS_COPY` (0x83).
    public static let ioasCopy = io(0x83)
    /// `IOMMU_IOAS_IOVA_RANGES` (0x84).
    public static let ioasIOVARanges = io(0x84)
    /// `IOMMU_IOAS_MAP` (0x85).
    public static let ioasMap = io(0x85)
    /// `IOMMU_IOAS_UNMAP` (0x86).
    public static let ioasUnmap = io(0x86)
    /// `IOMMU_OPTION` (0x87).
    public static let option = io(0x87)
    /// `IOMMU_VFIO_IOAS` (0x88).
    public static let vfioIOAS = io(0x88)
    /// `IOMMU_HWPT_ALLOC` (0x89).
    public static let hwptAlloc = io(0x89)
    /// `IOMMU_GET_HW_INFO` (0x8A).
    public static let getHWInfo = io(0x8A)
    /// `IOMMU_HWPT_SET_DIRTY_TRACKING` (0x8B).
    public static let hwptSetDirtyTracking = io(0x8B)
    /// `IOMMU_HWPT_GET_DIRTY_BITMAP` (0x8C).
    public static let hwptGetDirtyBitmap = io(0x8C)
    /// `IOMMU_HWPT_INVALIDATE` (0x8D).
    public static let hwptInvalidate = io(0x8D)
    /// `IOMMU_FAULT_QUEUE_ALLOC` (0x8E).
    public static let faultQueueAlloc = io(0x8E)
    /// `IOMMU_IOAS_MAP_FILE` (0x8F).
    public static let ioasMapFile = io(0x8F)
    /// `IOMMU_VIOMMU_ALLOC` (0x90).
    public static let viommuAlloc = io(0x90)
    /// `IOMMU_VDEVICE_ALLOC` (0x91).
    public static let vdeviceAlloc = io(0x91)
    /// `IOMMU_IOAS_CHANGE_PROCESS` (0x92).
    public static let ioasChangeProcess = io(0x92)
    /// `IOMMU_VEVENTQ_ALLOC` (0x93).
    public static let veventqAlloc = io(0x93)
    /// `IOMMU_HW_QUEUE_ALLOC` (0x94).
    public static let hwQueueAlloc = io(0x94)
    /// `IOMMU_TEST_CMD` (`IOMMUFD_CMD_BASE + 32` = 0xA0), only in test kernels
    /// (`CONFIG_IOMMUFD_TEST`); present when the context has a test backend.
    public static let testCmd = io(0xA0)

    /// `VFIO_BASE`.
    public static let vfioBase: UInt32 = 100
    /// `VFIO_GET_API_VERSION` (`_IO(';', 100)`): returns `VFIO_API_VERSION` (0).
    public static let vfioGetAPIVersion = io(100)
    /// `VFIO_CHECK_EXTENSION` (`_IO(';', 101)`): the argument is the extension value.
    public static let vfioCheckExtension = io(101)
    /// `VFIO_SET_IOMMU` (`_IO(';', 102)`): the argument is the IOMMU type value.
    public static let vfioSetIOMMU = io(102)
    /// `VFIO_IOMMU_GET_INFO` (`_IO(';', 112)`).
    public static let vfioIOMMUGetInfo = io(112)
    /// `VFIO_IOMMU_MAP_DMA` (`_IO(';', 113)`).
    public static let vfioIOMMUMapDMA = io(113)
    /// `VFIO_IOMMU_UNMAP_DMA` (`_IO(';', 114)`).
    public static let vfioIOMMUUnmapDMA = io(114)
    /// `VFIO_IOMMU_DIRTY_PAGES` (`_IO(';', 117)`): not supported by iommufd (`ENOTTY`).
    public static let vfioIOMMUDirtyPages = io(117)

    /// The uAPI name of an iommufd or VFIO-compat command (`IOMMU_IOAS_MAP`), or its
    /// number in hex for one this table does not know.
    public static func name(_ cmd: UInt32) -> String {
        let names: [UInt32: String] = [
            0x80: "IOMMU_DESTROY", 0x81: "IOMMU_IOAS_ALLOC", 0x82: "IOMMU_IOAS_ALLOW_IOVAS", 0x83: "IOMMU_IOAS_COPY",
            0x84: "IOMMU_IOAS_IOVA_RANGES", 0x85: "IOMMU_IOAS_MAP", 0x86: "IOMMU_IOAS_UNMAP", 0x87: "IOMMU_OPTION",
            0x88: "IOMMU_VFIO_IOAS", 0x89: "IOMMU_HWPT_ALLOC", 0x8A: "IOMMU_GET_HW_INFO",
            0x8B: "IOMMU_HWPT_SET_DIRTY_TRACKING", 0x8C: "IOMMU_HWPT_GET_DIRTY_BITMAP", 0x8D: "IOMMU_HWPT_INVALIDATE",
            0x8E: "IOMMU_FAULT_QUEUE_ALLOC", 0x8F: "IOMMU_IOAS_MAP_FILE", 0x90: "IOMMU_VIOMMU_ALLOC",
            0x91: "IOMMU_VDEVICE_ALLOC", 0x92: "IOMMU_IOAS_CHANGE_PROCESS", 0x93: "IOMMU_VEVENTQ_ALLOC",
            0x94: "IOMMU_HW_QUEUE_ALLOC", 0xA0: "IOMMU_TEST_CMD",
            100: "VFIO_GET_API_VERSION", 101: "VFIO_CHECK_EXTENSION", 102: "VFIO_SET_IOMMU",
            112: "VFIO_IOMMU_GET_INFO", 113: "VFIO_IOMMU_MAP_DMA", 114: "VFIO_IOMMU_UNMAP_DMA",
            117: "VFIO_IOMMU_DIRTY_PAGES",
        ]
        guard (cmd >> 8) & 0xff == type, let n = names[nr(cmd)] else { return "ioctl 0x" + String(cmd, radix: 16) }
        return n
    }
}

/// VFIO type1 constants used by the compatibility ioctls (`include/uapi/linux/vfio.h`).
public enum VFIOConstant {
    /// `VFIO_API_VERSION`.
    public static let apiVersion: Int32 = 0
    /// `VFIO_TYPE1_IOMMU`.
    public static let type1IOMMU: UInt64 = 1
    /// `VFIO_SPAPR_TCE_IOMMU`.
    public static let spaprTCEIOMMU: UInt64 = 2
    /// `VFIO_TYPE1v2_IOMMU`.
    public static let type1v2IOMMU: UInt64 = 3
    /// `VFIO_DMA_CC_IOMMU`.
    public static let dmaCCIOMMU: UInt64 = 4
    /// `VFIO_EEH`.
    public static let eeh: UInt64 = 5
    /// `__VFIO_RESERVED_TYPE1_NESTING_IOMMU`.
    public static let reservedType1Nesting: UInt64 = 6
    /// `VFIO_SPAPR_TCE_v2_IOMMU`.
    public static let spaprTCEv2IOMMU: UInt64 = 7
    /// `VFIO_NOIOMMU_IOMMU`.
    public static let noIOMMU: UInt64 = 8
    /// `VFIO_UNMAP_ALL`.
    public static let unmapAll: UInt64 = 9
    /// `VFIO_UPDATE_VADDR`.
    public static let updateVaddr: UInt64 = 10
    /// `VFIO_DMA_MAP_FLAG_READ`.
    public static let dmaMapFlagRead: UInt32 = 1 << 0
    /// `VFIO_DMA_MAP_FLAG_WRITE`.
    public static let dmaMapFlagWrite: UInt32 = 1 << 1
    /// `VFIO_DMA_MAP_FLAG_VADDR`.
    public static let dmaMapFlagVaddr: UInt32 = 1 << 2
    /// `VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP`.
    public static let dmaUnmapFlagGetDirtyBitmap: UInt32 = 1 << 0
    /// `VFIO_DMA_UNMAP_FLAG_ALL`.
    public static let dmaUnmapFlagAll: UInt32 = 1 << 1
    /// `VFIO_DMA_UNMAP_FLAG_VADDR`.
    public static let dmaUnmapFlagVaddr: UInt32 = 1 << 2
    /// `VFIO_IOMMU_INFO_PGSIZES`.
    public static let infoPgsizes: UInt32 = 1 << 0
    /// `VFIO_IOMMU_INFO_CAPS`.
    public static let infoCaps: UInt32 = 1 << 1
    /// `VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE`.
    public static let capIOVARange: UInt16 = 1
    /// `VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL`.
    public static let capDMAAvail: UInt16 = 3
}
