// The HWPT, hardware-info and fault-queue argument structures of
// `include/uapi/linux/iommufd.h`, each declared by its field table (UAPIRecord.swift).

/// `struct iommu_hwpt_alloc`: argument of `IOMMU_HWPT_ALLOC`.
public struct IOMMUHWPTAlloc: UAPIStruct, Hashable {
    /// The C name: `struct iommu_hwpt_alloc`.
    public static let cName = "iommu_hwpt_alloc"
    /// `sizeof(struct iommu_hwpt_alloc)`: 48 bytes.
    public static let size = 48
    /// `IOCTL_OP(IOMMU_HWPT_ALLOC, …, __reserved)`: `fault_id` and after are optional.
    public static let minSize = offsetOfEnd("__reserved")
    /// The fields of `struct iommu_hwpt_alloc` in layout order: C name, byte offset, storage.
    @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
        f.field("size", 0, &v.size)
        f.field("flags", 4, &v.flags)
        f.field("dev_id", 8, &v.devId)
        f.field("pt_id", 12, &v.ptId)
        f.field("out_hwpt_id", 16, &v.outHwptId)
        f.field("__reserved", 20, &v.reserved)
        f.field("data_type", 24, &v.dataType)
        f.field("data_len", 28, &v.dataLen)
        f.field("data_uptr", 32, &v.dataUptr)
        f.field("fault_id", 40, &v.faultId)
        f.field("__reserved2", 44, &v.reserved2)
    }

    /// `size`: the caller's structure size, for extensibility.
    public var size: UInt32 = UInt32(Self.size)
    /// `flags`: `IOMMU_HWPT_ALLOC_*`.
    public var flags: UInt32 = 0
    /// `dev_id`: the device.
    public var devId: UInt32 = 0
    /// `pt_id`: IOAS or nesting-parent HWPT_PAGING.
    public var ptId: UInt32 = 0
    /// `out_hwpt_id`: output: the new HWPT id.
    public var outHwptId: UInt32 = 0
    /// `__reserved`: must be 0.
    public var reserved: UInt32 = 0
    /// `data_type`: `enum iommu_hwpt_data_type`.
    public var dataType: UInt32 = 0
    /// `data_len`: length of the vendor data.
    public var dataLen: UInt32 = 0
    /// `data_uptr`: user pointer to the vendor data.
    public var dataUptr: UInt64 = 0
    /// `fault_id`: FAULT object, with `IOMMU_HWPT_FAULT_ID_VALID`.
    public var faultId: UInt32 = 0
    /// `__reserved2`: not checked by the kernel.
    public var reserved2: UInt32 = 0

    /// An all-zero `struct iommu_hwpt_alloc`, but `size`, which is `sizeof`.
    public init() {}
    /// A value with the given fields, zero by default; `size` is `sizeof`.
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
}

/// `struct iommu_hw_info`: argument of `IOMMU_GET_HW_INFO`.
public struct IOMMUHWInfo: UAPIStruct, Hashable {
    /// The C name: `struct iommu_hw_info`.
    public static let cName = "iommu_hw_info"
    /// `sizeof(struct iommu_hw_info)`: 40 bytes.
    public static let size = 40
    /// `IOCTL_OP(IOMMU_GET_HW_INFO, …, __reserved)`: `out_capabilities` is optional.
    public static let minSize = offsetOfEnd("__reserved[2]")
    /// The fields of `struct iommu_hw_info` in layout order: C name, byte offset, storage.
    @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
        f.field("size", 0, &v.size)
        f.field("flags", 4, &v.flags)
        f.field("dev_id", 8, &v.devId)
        f.field("data_len", 12, &v.dataLen)
        f.field("data_uptr", 16, &v.dataUptr)
        f.field("out_data_type", 24, &v.dataType)
        f.field("out_max_pasid_log2", 28, &v.outMaxPasidLog2)
        f.field("__reserved[0]", 29, &v.reserved0)
        f.field("__reserved[1]", 30, &v.reserved1)
        f.field("__reserved[2]", 31, &v.reserved2)
        f.field("out_capabilities", 32, &v.outCapabilities)
    }

    /// `size`: the caller's structure size, for extensibility.
    public var size: UInt32 = UInt32(Self.size)
    /// `flags`: `IOMMU_HW_INFO_FLAG_INPUT_TYPE`.
    public var flags: UInt32 = 0
    /// `dev_id`: the device.
    public var devId: UInt32 = 0
    /// `data_len`: in: buffer size; out: the kernel data size.
    public var dataLen: UInt32 = 0
    /// `data_uptr`: user pointer to the buffer.
    public var dataUptr: UInt64 = 0
    /// `in_data_type` / `out_data_type` (a union): the type asked for with
    /// `IOMMU_HW_INFO_FLAG_INPUT_TYPE`; on output, the type of the data returned.
    public var dataType: UInt32 = 0
    /// `out_max_pasid_log2`: output: log2 of the PASID space, 0 without PASID.
    public var outMaxPasidLog2: UInt8 = 0
    /// `__reserved[0]`: must be 0.
    public var reserved0: UInt8 = 0
    /// `__reserved[1]`: must be 0.
    public var reserved1: UInt8 = 0
    /// `__reserved[2]`: must be 0.
    public var reserved2: UInt8 = 0
    /// `out_capabilities`: output: `IOMMU_HW_CAP_*`.
    public var outCapabilities: UInt64 = 0

    /// An all-zero `struct iommu_hw_info`, but `size`, which is `sizeof`.
    public init() {}
    /// A value with the given fields, zero by default; `size` is `sizeof`.
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
}

/// `struct iommu_hwpt_set_dirty_tracking`: argument of `IOMMU_HWPT_SET_DIRTY_TRACKING`.
public struct IOMMUHWPTSetDirtyTracking: UAPIStruct, Hashable {
    /// The C name: `struct iommu_hwpt_set_dirty_tracking`.
    public static let cName = "iommu_hwpt_set_dirty_tracking"
    /// `sizeof(struct iommu_hwpt_set_dirty_tracking)`: 16 bytes.
    public static let size = 16
    /// The fields of `struct iommu_hwpt_set_dirty_tracking` in layout order: C name, byte offset, storage.
    @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
        f.field("size", 0, &v.size)
        f.field("flags", 4, &v.flags)
        f.field("hwpt_id", 8, &v.hwptId)
        f.field("__reserved", 12, &v.reserved)
    }

    /// `size`: the caller's structure size, for extensibility.
    public var size: UInt32 = UInt32(Self.size)
    /// `flags`: `IOMMU_HWPT_DIRTY_TRACKING_ENABLE`.
    public var flags: UInt32 = 0
    /// `hwpt_id`: a HWPT_PAGING.
    public var hwptId: UInt32 = 0
    /// `__reserved`: not checked by the kernel.
    public var reserved: UInt32 = 0

    /// An all-zero `struct iommu_hwpt_set_dirty_tracking`, but `size`, which is `sizeof`.
    public init() {}
    /// A value with the given fields, zero by default; `size` is `sizeof`.
    public init(flags: UInt32 = 0, hwptId: UInt32 = 0, reserved: UInt32 = 0) {
        self.flags = flags
        self.hwptId = hwptId
        self.reserved = reserved
    }
}

/// `struct iommu_hwpt_get_dirty_bitmap`: argument of `IOMMU_HWPT_GET_DIRTY_BITMAP`.
public struct IOMMUHWPTGetDirtyBitmap: UAPIStruct, Hashable {
    /// The C name: `struct iommu_hwpt_get_dirty_bitmap`.
    public static let cName = "iommu_hwpt_get_dirty_bitmap"
    /// `sizeof(struct iommu_hwpt_get_dirty_bitmap)`: 48 bytes.
    public static let size = 48
    /// The fields of `struct iommu_hwpt_get_dirty_bitmap` in layout order: C name, byte offset, storage.
    @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
        f.field("size", 0, &v.size)
        f.field("hwpt_id", 4, &v.hwptId)
        f.field("flags", 8, &v.flags)
        f.field("__reserved", 12, &v.reserved)
        f.field("iova", 16, &v.iova)
        f.field("length", 24, &v.length)
        f.field("page_size", 32, &v.pageSize)
        f.field("data", 40, &v.data)
    }

    /// `size`: the caller's structure size, for extensibility.
    public var size: UInt32 = UInt32(Self.size)
    /// `hwpt_id`: a HWPT_PAGING.
    public var hwptId: UInt32 = 0
    /// `flags`: `IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR`.
    public var flags: UInt32 = 0
    /// `__reserved`: must be 0.
    public var reserved: UInt32 = 0
    /// `iova`: first IOVA.
    public var iova: UInt64 = 0
    /// `length`: bytes.
    public var length: UInt64 = 0
    /// `page_size`: bytes per bitmap bit.
    public var pageSize: UInt64 = 0
    /// `data`: user pointer to the bitmap.
    public var data: UInt64 = 0

    /// An all-zero `struct iommu_hwpt_get_dirty_bitmap`, but `size`, which is `sizeof`.
    public init() {}
    /// A value with the given fields, zero by default; `size` is `sizeof`.
    public init(hwptId: UInt32 = 0, flags: UInt32 = 0, reserved: UInt32 = 0, iova: UInt64 = 0, length: UInt64 = 0, pageSize: UInt64 = 0, data: UInt64 = 0) {
        self.hwptId = hwptId
        self.flags = flags
        self.reserved = reserved
        self.iova = iova
        self.length = length
        self.pageSize = pageSize
        self.data = data
    }
}

/// `struct iommu_hwpt_invalidate`: argument of `IOMMU_HWPT_INVALIDATE`.
public struct IOMMUHWPTInvalidate: UAPIStruct, Hashable {
    /// The C name: `struct iommu_hwpt_invalidate`.
    public static let cName = "iommu_hwpt_invalidate"
    /// `sizeof(struct iommu_hwpt_invalidate)`: 32 bytes.
    public static let size = 32
    /// The fields of `struct iommu_hwpt_invalidate` in layout order: C name, byte offset, storage.
    @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
        f.field("size", 0, &v.size)
        f.field("hwpt_id", 4, &v.hwptId)
        f.field("data_uptr", 8, &v.dataUptr)
        f.field("data_type", 16, &v.dataType)
        f.field("entry_len", 20, &v.entryLen)
        f.field("entry_num", 24, &v.entryNum)
        f.field("__reserved", 28, &v.reserved)
    }

    /// `size`: the caller's structure size, for extensibility.
    public var size: UInt32 = UInt32(Self.size)
    /// `hwpt_id`: a nested HWPT or a vIOMMU.
    public var hwptId: UInt32 = 0
    /// `data_uptr`: user pointer to the entry array.
    public var dataUptr: UInt64 = 0
    /// `data_type`: `enum iommu_hwpt_invalidate_data_type`.
    public var dataType: UInt32 = 0
    /// `entry_len`: bytes per entry.
    public var entryLen: UInt32 = 0
    /// `entry_num`: in: entries; out: entries handled.
    public var entryNum: UInt32 = 0
    /// `__reserved`: must be 0.
    public var reserved: UInt32 = 0

    /// An all-zero `struct iommu_hwpt_invalidate`, but `size`, which is `sizeof`.
    public init() {}
    /// A value with the given fields, zero by default; `size` is `sizeof`.
    public init(hwptId: UInt32 = 0, dataUptr: UInt64 = 0, dataType: UInt32 = 0, entryLen: UInt32 = 0, entryNum: UInt32 = 0, reserved: UInt32 = 0) {
        self.hwptId = hwptId
        self.dataUptr = dataUptr
        self.dataType = dataType
        self.entryLen = entryLen
        self.entryNum = entryNum
        self.reserved = reserved
    }
}

/// `struct iommu_fault_alloc`: argument of `IOMMU_FAULT_QUEUE_ALLOC`.
public struct IOMMUFaultAlloc: UAPIStruct, Hashable {
    /// The C name: `struct iommu_fault_alloc`.
    public static let cName = "iommu_fault_alloc"
    /// `sizeof(struct iommu_fault_alloc)`: 16 bytes.
    public static let size = 16
    /// The fields of `struct iommu_fault_alloc` in layout order: C name, byte offset, storage.
    @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
        f.field("size", 0, &v.size)
        f.field("flags", 4, &v.flags)
        f.field("out_fault_id", 8, &v.outFaultId)
        f.field("out_fault_fd", 12, &v.outFaultFd)
    }

    /// `size`: the caller's structure size, for extensibility.
    public var size: UInt32 = UInt32(Self.size)
    /// `flags`: must be 0.
    public var flags: UInt32 = 0
    /// `out_fault_id`: output: the FAULT object id.
    public var outFaultId: UInt32 = 0
    /// `out_fault_fd`: output: the fault queue file descriptor.
    public var outFaultFd: UInt32 = 0

    /// An all-zero `struct iommu_fault_alloc`, but `size`, which is `sizeof`.
    public init() {}
    /// A value with the given fields, zero by default; `size` is `sizeof`.
    public init(flags: UInt32 = 0, outFaultId: UInt32 = 0, outFaultFd: UInt32 = 0) {
        self.flags = flags
        self.outFaultId = outFaultId
        self.outFaultFd = outFaultFd
    }
}
