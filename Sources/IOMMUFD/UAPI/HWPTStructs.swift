// Generated from the field tables of include/uapi/linux/iommufd.h (explicit offsets,
// little-endian); see UAPIBytes.swift for the encoding rules.

/// `struct iommu_hwpt_alloc` (48 bytes, min_size 24): argument of `IOMMU_HWPT_ALLOC`.
public struct IOMMUHWPTAlloc: UAPIStruct, Hashable {
    /// `sizeof(struct iommu_hwpt_alloc)`.
    public static let size = 48
    /// `min_size` from the kernel ioctl table: the fields after it are optional.
    public static let minSize = 24
    /// `size` (u32 @0): the caller's structure size, for extensibility
    public var size: UInt32 = UInt32(48)
    /// `flags` (u32 @4): `IOMMU_HWPT_ALLOC_*`
    public var flags: UInt32
    /// `dev_id` (u32 @8): the device
    public var devId: UInt32
    /// `pt_id` (u32 @12): IOAS or nesting-parent HWPT_PAGING
    public var ptId: UInt32
    /// `out_hwpt_id` (u32 @16): output: the new HWPT id
    public var outHwptId: UInt32
    /// `__reserved` (u32 @20): must be 0
    public var reserved: UInt32
    /// `data_type` (u32 @24): `enum iommu_hwpt_data_type`
    public var dataType: UInt32
    /// `data_len` (u32 @28): length of the vendor data
    public var dataLen: UInt32
    /// `data_uptr` (u64 @32): user pointer to the vendor data
    public var dataUptr: UInt64
    /// `fault_id` (u32 @40): FAULT object, with `IOMMU_HWPT_FAULT_ID_VALID`
    public var faultId: UInt32
    /// `__reserved2` (u32 @44): not checked by the kernel
    public var reserved2: UInt32
    /// A value with every field given (zero by default); `size` is `sizeof`.
    public init(flags: UInt32 = 0, devId: UInt32 = 0, ptId: UInt32 = 0, outHwptId: UInt32 = 0, reserved: UInt32 = 0, dataType: UInt32 = 0, dataLen: UInt32 = 0, dataUptr: UInt64 = 0, faultId: UInt32 = 0, reserved2: UInt32 = 0) {
        self.flags = flags
        self.devId = devId
        self.ptId = ptId
        self.outHwptId = outHwptId
        self.reserved = reserved
        self.dataType = dataType
        self.dataLen = dataLen
        self.dataUptr = dataUptr
        self.faultId = faultId
        self.reserved2 = reserved2
    }
    /// Decodes the fields at their kernel offsets.
    public init(_ b: UAPIBytes) {
        size = b.u32(0)
        flags = b.u32(4)
        devId = b.u32(8)
        ptId = b.u32(12)
        outHwptId = b.u32(16)
        reserved = b.u32(20)
        dataType = b.u32(24)
        dataLen = b.u32(28)
        dataUptr = b.u64(32)
        faultId = b.u32(40)
        reserved2 = b.u32(44)
    }
    /// Writes the fields at their kernel offsets.
    public func encode(into b: inout UAPIBytes) {
        b.setU32(0, size)
        b.setU32(4, flags)
        b.setU32(8, devId)
        b.setU32(12, ptId)
        b.setU32(16, outHwptId)
        b.setU32(20, reserved)
        b.setU32(24, dataType)
        b.setU32(28, dataLen)
        b.setU64(32, dataUptr)
        b.setU32(40, faultId)
        b.setU32(44, reserved2)
    }
}
/// `struct iommu_hw_info` (40 bytes, min_size 32): argument of `IOMMU_GET_HW_INFO`.
public struct IOMMUHWInfo: UAPIStruct, Hashable {
    /// `sizeof(struct iommu_hw_info)`.
    public static let size = 40
    /// `min_size` from the kernel ioctl table: the fields after it are optional.
    public static let minSize = 32
    /// `size` (u32 @0): the caller's structure size, for extensibility
    public var size: UInt32 = UInt32(40)
    /// `flags` (u32 @4): `IOMMU_HW_INFO_FLAG_INPUT_TYPE`
    public var flags: UInt32
    /// `dev_id` (u32 @8): the device
    public var devId: UInt32
    /// `data_len` (u32 @12): in: buffer size; out: the kernel data size
    public var dataLen: UInt32
    /// `data_uptr` (u64 @16): user pointer to the buffer
    public var dataUptr: UInt64
    /// `data_type` (u32 @24): union `in_data_type` / `out_data_type`
    public var dataType: UInt32
    /// `out_max_pasid_log2` (u8 @28): output: log2 of the PASID space, 0 without PASID
    public var outMaxPasidLog2: UInt8
    /// `__reserved0` (u8 @29): `__reserved[0]`, must be 0
    public var reserved0: UInt8
    /// `__reserved1` (u8 @30): `__reserved[1]`, must be 0
    public var reserved1: UInt8
    /// `__reserved2` (u8 @31): `__reserved[2]`, must be 0
    public var reserved2: UInt8
    /// `out_capabilities` (u64 @32): output: `IOMMU_HW_CAP_*`
    public var outCapabilities: UInt64
    /// A value with every field given (zero by default); `size` is `sizeof`.
    public init(flags: UInt32 = 0, devId: UInt32 = 0, dataLen: UInt32 = 0, dataUptr: UInt64 = 0, dataType: UInt32 = 0, outMaxPasidLog2: UInt8 = 0, reserved0: UInt8 = 0, reserved1: UInt8 = 0, reserved2: UInt8 = 0, outCapabilities: UInt64 = 0) {
        self.flags = flags
        self.devId = devId
        self.dataLen = dataLen
        self.dataUptr = dataUptr
        self.dataType = dataType
        self.outMaxPasidLog2 = outMaxPasidLog2
        self.reserved0 = reserved0
        self.reserved1 = reserved1
        self.reserved2 = reserved2
        self.outCapabilities = outCapabilities
    }
    /// Decodes the fields at their kernel offsets.
    public init(_ b: UAPIBytes) {
        size = b.u32(0)
        flags = b.u32(4)
        devId = b.u32(8)
        dataLen = b.u32(12)
        dataUptr = b.u64(16)
        dataType = b.u32(24)
        outMaxPasidLog2 = b.u8(28)
        reserved0 = b.u8(29)
        reserved1 = b.u8(30)
        reserved2 = b.u8(31)
        outCapabilities = b.u64(32)
    }
    /// Writes the fields at their kernel offsets.
    public func encode(into b: inout UAPIBytes) {
        b.setU32(0, size)
        b.setU32(4, flags)
        b.setU32(8, devId)
        b.setU32(12, dataLen)
        b.setU64(16, dataUptr)
        b.setU32(24, dataType)
        b.setU8(28, outMaxPasidLog2)
        b.setU8(29, reserved0)
        b.setU8(30, reserved1)
        b.setU8(31, reserved2)
        b.setU64(32, outCapabilities)
    }
}
/// `struct iommu_hwpt_set_dirty_tracking` (16 bytes): argument of `IOMMU_HWPT_SET_DIRTY_TRACKING`.
public struct IOMMUHWPTSetDirtyTracking: UAPIStruct, Hashable {
    /// `sizeof(struct iommu_hwpt_set_dirty_tracking)`.
    public static let size = 16
    /// `size` (u32 @0): the caller's structure size, for extensibility
    public var size: UInt32 = UInt32(16)
    /// `flags` (u32 @4): `IOMMU_HWPT_DIRTY_TRACKING_ENABLE`
    public var flags: UInt32
    /// `hwpt_id` (u32 @8): a HWPT_PAGING
    public var hwptId: UInt32
    /// `__reserved` (u32 @12): not checked by the kernel
    public var reserved: UInt32
    /// A value with every field given (zero by default); `size` is `sizeof`.
    public init(flags: UInt32 = 0, hwptId: UInt32 = 0, reserved: UInt32 = 0) {
        self.flags = flags
        self.hwptId = hwptId
        self.reserved = reserved
    }
    /// Decodes the fields at their kernel offsets.
    public init(_ b: UAPIBytes) {
        size = b.u32(0)
        flags = b.u32(4)
        hwptId = b.u32(8)
        reserved = b.u32(12)
    }
    /// Writes the fields at their kernel offsets.
    public func encode(into b: inout UAPIBytes) {
        b.setU32(0, size)
        b.setU32(4, flags)
        b.setU32(8, hwptId)
        b.setU32(12, reserved)
    }
}
/// `struct iommu_hwpt_get_dirty_bitmap` (48 bytes): argument of `IOMMU_HWPT_GET_DIRTY_BITMAP`.
public struct IOMMUHWPTGetDirtyBitmap: UAPIStruct, Hashable {
    /// `sizeof(struct iommu_hwpt_get_dirty_bitmap)`.
    public static let size = 48
    /// `size` (u32 @0): the caller's structure size, for extensibility
    public var size: UInt32 = UInt32(48)
    /// `hwpt_id` (u32 @4): a HWPT_PAGING
    public var hwptId: UInt32
    /// `flags` (u32 @8): `IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR`
    public var flags: UInt32
    /// `__reserved` (u32 @12): must be 0
    public var reserved: UInt32
    /// `iova` (u64 @16): first IOVA
    public var iova: UInt64
    /// `length` (u64 @24): bytes
    public var length: UInt64
    /// `page_size` (u64 @32): bytes per bitmap bit
    public var pageSize: UInt64
    /// `data` (u64 @40): user pointer to the bitmap
    public var data: UInt64
    /// A value with every field given (zero by default); `size` is `sizeof`.
    public init(hwptId: UInt32 = 0, flags: UInt32 = 0, reserved: UInt32 = 0, iova: UInt64 = 0, length: UInt64 = 0, pageSize: UInt64 = 0, data: UInt64 = 0) {
        self.hwptId = hwptId
        self.flags = flags
        self.reserved = reserved
        self.iova = iova
        self.length = length
        self.pageSize = pageSize
        self.data = data
    }
    /// Decodes the fields at their kernel offsets.
    public init(_ b: UAPIBytes) {
        size = b.u32(0)
        hwptId = b.u32(4)
        flags = b.u32(8)
        reserved = b.u32(12)
        iova = b.u64(16)
        length = b.u64(24)
        pageSize = b.u64(32)
        data = b.u64(40)
    }
    /// Writes the fields at their kernel offsets.
    public func encode(into b: inout UAPIBytes) {
        b.setU32(0, size)
        b.setU32(4, hwptId)
        b.setU32(8, flags)
        b.setU32(12, reserved)
        b.setU64(16, iova)
        b.setU64(24, length)
        b.setU64(32, pageSize)
        b.setU64(40, data)
    }
}
/// `struct iommu_hwpt_invalidate` (32 bytes): argument of `IOMMU_HWPT_INVALIDATE`.
public struct IOMMUHWPTInvalidate: UAPIStruct, Hashable {
    /// `sizeof(struct iommu_hwpt_invalidate)`.
    public static let size = 32
    /// `size` (u32 @0): the caller's structure size, for extensibility
    public var size: UInt32 = UInt32(32)
    /// `hwpt_id` (u32 @4): a nested HWPT or a vIOMMU
    public var hwptId: UInt32
    /// `data_uptr` (u64 @8): user pointer to the entry array
    public var dataUptr: UInt64
    /// `data_type` (u32 @16): `enum iommu_hwpt_invalidate_data_type`
    public var dataType: UInt32
    /// `entry_len` (u32 @20): bytes per entry
    public var entryLen: UInt32
    /// `entry_num` (u32 @24): in: entries; out: entries handled
    public var entryNum: UInt32
    /// `__reserved` (u32 @28): must be 0
    public var reserved: UInt32
    /// A value with every field given (zero by default); `size` is `sizeof`.
    public init(hwptId: UInt32 = 0, dataUptr: UInt64 = 0, dataType: UInt32 = 0, entryLen: UInt32 = 0, entryNum: UInt32 = 0, reserved: UInt32 = 0) {
        self.hwptId = hwptId
        self.dataUptr = dataUptr
        self.dataType = dataType
        self.entryLen = entryLen
        self.entryNum = entryNum
        self.reserved = reserved
    }
    /// Decodes the fields at their kernel offsets.
    public init(_ b: UAPIBytes) {
        size = b.u32(0)
        hwptId = b.u32(4)
        dataUptr = b.u64(8)
        dataType = b.u32(16)
        entryLen = b.u32(20)
        entryNum = b.u32(24)
        reserved = b.u32(28)
    }
    /// Writes the fields at their kernel offsets.
    public func encode(into b: inout UAPIBytes) {
        b.setU32(0, size)
        b.setU32(4, hwptId)
        b.setU64(8, dataUptr)
        b.setU32(16, dataType)
        b.setU32(20, entryLen)
        b.setU32(24, entryNum)
        b.setU32(28, reserved)
    }
}
/// `struct iommu_fault_alloc` (16 bytes): argument of `IOMMU_FAULT_QUEUE_ALLOC`.
public struct IOMMUFaultAlloc: UAPIStruct, Hashable {
    /// `sizeof(struct iommu_fault_alloc)`.
    public static let size = 16
    /// `size` (u32 @0): the caller's structure size, for extensibility
    public var size: UInt32 = UInt32(16)
    /// `flags` (u32 @4): must be 0
    public var flags: UInt32
    /// `out_fault_id` (u32 @8): output: the FAULT object id
    public var outFaultId: UInt32
    /// `out_fault_fd` (u32 @12): output: the fault queue file descriptor
    public var outFaultFd: UInt32
    /// A value with every field given (zero by default); `size` is `sizeof`.
    public init(flags: UInt32 = 0, outFaultId: UInt32 = 0, outFaultFd: UInt32 = 0) {
        self.flags = flags
        self.outFaultId = outFaultId
        self.outFaultFd = outFaultFd
    }
    /// Decodes the fields at their kernel offsets.
    public init(_ b: UAPIBytes) {
        size = b.u32(0)
        flags = b.u32(4)
        outFaultId = b.u32(8)
        outFaultFd = b.u32(12)
    }
    /// Writes the fields at their kernel offsets.
    public func encode(into b: inout UAPIBytes) {
        b.setU32(0, size)
        b.setU32(4, flags)
        b.setU32(8, outFaultId)
        b.setU32(12, outFaultFd)
    }
}
