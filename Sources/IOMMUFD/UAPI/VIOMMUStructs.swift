// The vIOMMU family's argument structures of `include/uapi/linux/iommufd.h` (vIOMMU,
// vDEVICE, vEVENTQ, HW queue), each declared by its field table (UAPIRecord.swift).

/// `struct iommu_viommu_alloc`: argument of `IOMMU_VIOMMU_ALLOC`.
public struct IOMMUVIOMMUAlloc: UAPIStruct, Hashable {
    /// The C name: `struct iommu_viommu_alloc`.
    public static let cName = "iommu_viommu_alloc"
    /// `sizeof(struct iommu_viommu_alloc)`: 40 bytes.
    public static let size = 40
    /// `IOCTL_OP(…, out_viommu_id)`: the fields after it are optional.
    public static let minSize = offsetOfEnd("out_viommu_id")
    /// The fields of `struct iommu_viommu_alloc` in layout order: C name, byte offset, storage.
    @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
        f.field("size", 0, &v.size)
        f.field("flags", 4, &v.flags)
        f.field("type", 8, &v.type)
        f.field("dev_id", 12, &v.devId)
        f.field("hwpt_id", 16, &v.hwptId)
        f.field("out_viommu_id", 20, &v.outViommuId)
        f.field("data_len", 24, &v.dataLen)
        f.field("__reserved", 28, &v.reserved)
        f.field("data_uptr", 32, &v.dataUptr)
    }

    /// `size`: the caller's structure size.
    public var size: UInt32 = UInt32(Self.size)
    /// `flags`: must be 0.
    public var flags: UInt32 = 0
    /// `type`: `enum iommu_viommu_type`.
    public var type: UInt32 = 0
    /// `dev_id`: the device whose physical IOMMU backs the vIOMMU.
    public var devId: UInt32 = 0
    /// `hwpt_id`: a nesting-parent HWPT_PAGING.
    public var hwptId: UInt32 = 0
    /// `out_viommu_id`: output: the new vIOMMU's ID.
    public var outViommuId: UInt32 = 0
    /// `data_len`: length of the type's data.
    public var dataLen: UInt32 = 0
    /// `__reserved`: not checked by the kernel.
    public var reserved: UInt32 = 0
    /// `data_uptr`: user pointer to the type's data.
    public var dataUptr: UInt64 = 0

    /// An all-zero `struct iommu_viommu_alloc`, but `size`, which is `sizeof`.
    public init() {}
    /// A value with the given fields, zero by default; `size` is `sizeof`.
    public init(flags: UInt32 = 0, type: UInt32 = 0, devId: UInt32 = 0, hwptId: UInt32 = 0, outViommuId: UInt32 = 0, dataLen: UInt32 = 0, reserved: UInt32 = 0, dataUptr: UInt64 = 0) {
        self.flags = flags
        self.type = type
        self.devId = devId
        self.hwptId = hwptId
        self.outViommuId = outViommuId
        self.dataLen = dataLen
        self.reserved = reserved
        self.dataUptr = dataUptr
    }
}

/// `struct iommu_vdevice_alloc`: argument of `IOMMU_VDEVICE_ALLOC`.
public struct IOMMUVDeviceAlloc: UAPIStruct, Hashable {
    /// The C name: `struct iommu_vdevice_alloc`.
    public static let cName = "iommu_vdevice_alloc"
    /// `sizeof(struct iommu_vdevice_alloc)`: 24 bytes.
    public static let size = 24
    /// The fields of `struct iommu_vdevice_alloc` in layout order: C name, byte offset, storage.
    @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
        f.field("size", 0, &v.size)
        f.field("viommu_id", 4, &v.viommuId)
        f.field("dev_id", 8, &v.devId)
        f.field("out_vdevice_id", 12, &v.outVdeviceId)
        f.field("virt_id", 16, &v.virtId)
    }

    /// `size`: the caller's structure size.
    public var size: UInt32 = UInt32(Self.size)
    /// `viommu_id`: the vIOMMU.
    public var viommuId: UInt32 = 0
    /// `dev_id`: the physical device.
    public var devId: UInt32 = 0
    /// `out_vdevice_id`: output: the new vDEVICE's ID.
    public var outVdeviceId: UInt32 = 0
    /// `virt_id`: the device's virtual ID in the vIOMMU (vSID, vRID…).
    public var virtId: UInt64 = 0

    /// An all-zero `struct iommu_vdevice_alloc`, but `size`, which is `sizeof`.
    public init() {}
    /// A value with the given fields, zero by default; `size` is `sizeof`.
    public init(viommuId: UInt32 = 0, devId: UInt32 = 0, outVdeviceId: UInt32 = 0, virtId: UInt64 = 0) {
        self.viommuId = viommuId
        self.devId = devId
        self.outVdeviceId = outVdeviceId
        self.virtId = virtId
    }
}

/// `struct iommu_veventq_alloc`: argument of `IOMMU_VEVENTQ_ALLOC`.
public struct IOMMUVEventQAlloc: UAPIStruct, Hashable {
    /// The C name: `struct iommu_veventq_alloc`.
    public static let cName = "iommu_veventq_alloc"
    /// `sizeof(struct iommu_veventq_alloc)`: 32 bytes.
    public static let size = 32
    /// `IOCTL_OP(…, out_veventq_fd)`: the fields after it are optional.
    public static let minSize = offsetOfEnd("out_veventq_fd")
    /// The fields of `struct iommu_veventq_alloc` in layout order: C name, byte offset, storage.
    @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
        f.field("size", 0, &v.size)
        f.field("flags", 4, &v.flags)
        f.field("viommu_id", 8, &v.viommuId)
        f.field("type", 12, &v.type)
        f.field("veventq_depth", 16, &v.veventqDepth)
        f.field("out_veventq_id", 20, &v.outVeventqId)
        f.field("out_veventq_fd", 24, &v.outVeventqFd)
        f.field("__reserved", 28, &v.reserved)
    }

    /// `size`: the caller's structure size.
    public var size: UInt32 = UInt32(Self.size)
    /// `flags`: must be 0.
    public var flags: UInt32 = 0
    /// `viommu_id`: the vIOMMU.
    public var viommuId: UInt32 = 0
    /// `type`: `enum iommu_veventq_type`.
    public var type: UInt32 = 0
    /// `veventq_depth`: how many events the queue holds before it drops.
    public var veventqDepth: UInt32 = 0
    /// `out_veventq_id`: output: the new vEVENTQ's ID.
    public var outVeventqId: UInt32 = 0
    /// `out_veventq_fd`: output: the file descriptor to read events from.
    public var outVeventqFd: UInt32 = 0
    /// `__reserved`: must be 0.
    public var reserved: UInt32 = 0

    /// An all-zero `struct iommu_veventq_alloc`, but `size`, which is `sizeof`.
    public init() {}
    /// A value with the given fields, zero by default; `size` is `sizeof`.
    public init(flags: UInt32 = 0, viommuId: UInt32 = 0, type: UInt32 = 0, veventqDepth: UInt32 = 0, outVeventqId: UInt32 = 0, outVeventqFd: UInt32 = 0, reserved: UInt32 = 0) {
        self.flags = flags
        self.viommuId = viommuId
        self.type = type
        self.veventqDepth = veventqDepth
        self.outVeventqId = outVeventqId
        self.outVeventqFd = outVeventqFd
        self.reserved = reserved
    }
}

/// `struct iommu_hw_queue_alloc`: argument of `IOMMU_HW_QUEUE_ALLOC`.
public struct IOMMUHWQueueAlloc: UAPIStruct, Hashable {
    /// The C name: `struct iommu_hw_queue_alloc`.
    public static let cName = "iommu_hw_queue_alloc"
    /// `sizeof(struct iommu_hw_queue_alloc)`: 40 bytes.
    public static let size = 40
    /// The fields of `struct iommu_hw_queue_alloc` in layout order: C name, byte offset, storage.
    @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
        f.field("size", 0, &v.size)
        f.field("flags", 4, &v.flags)
        f.field("viommu_id", 8, &v.viommuId)
        f.field("type", 12, &v.type)
        f.field("index", 16, &v.index)
        f.field("out_hw_queue_id", 20, &v.outHwQueueId)
        f.field("nesting_parent_iova", 24, &v.nestingParentIova)
        f.field("length", 32, &v.length)
    }

    /// `size`: the caller's structure size.
    public var size: UInt32 = UInt32(Self.size)
    /// `flags`: must be 0.
    public var flags: UInt32 = 0
    /// `viommu_id`: the vIOMMU.
    public var viommuId: UInt32 = 0
    /// `type`: `enum iommu_hw_queue_type`.
    public var type: UInt32 = 0
    /// `index`: the queue's index among the vIOMMU's queues of its type.
    public var index: UInt32 = 0
    /// `out_hw_queue_id`: output: the new HW queue's ID.
    public var outHwQueueId: UInt32 = 0
    /// `nesting_parent_iova`: the queue memory's guest physical address.
    public var nestingParentIova: UInt64 = 0
    /// `length`: the queue memory's length.
    public var length: UInt64 = 0

    /// An all-zero `struct iommu_hw_queue_alloc`, but `size`, which is `sizeof`.
    public init() {}
    /// A value with the given fields, zero by default; `size` is `sizeof`.
    public init(flags: UInt32 = 0, viommuId: UInt32 = 0, type: UInt32 = 0, index: UInt32 = 0, outHwQueueId: UInt32 = 0, nestingParentIova: UInt64 = 0, length: UInt64 = 0) {
        self.flags = flags
        self.viommuId = viommuId
        self.type = type
        self.index = index
        self.outHwQueueId = outHwQueueId
        self.nestingParentIova = nestingParentIova
        self.length = length
    }
}
