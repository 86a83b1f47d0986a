// The records of the vIOMMU family: the vEVENTQ event header of
// `include/uapi/linux/iommufd.h` and the selftest mock vIOMMU's data of `iommufd_test.h`,
// each declared by its field table (UAPIRecord.swift).

/// `struct iommu_viommu_selftest`: the mock vIOMMU's data (`IOMMU_VIOMMU_TYPE_SELFTEST`).
public struct IOMMUVIOMMUSelftest: UAPIRecord, Hashable {
    /// The C name: `struct iommu_viommu_selftest`.
    public static let cName = "iommu_viommu_selftest"
    /// `sizeof(struct iommu_viommu_selftest)`: 24 bytes.
    public static let size = 24
    /// The fields of `struct iommu_viommu_selftest` in layout order: C name, byte offset, storage.
    @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
        f.field("in_data", 0, &v.inData)
        f.field("out_data", 4, &v.outData)
        f.field("out_mmap_offset", 8, &v.outMmapOffset)
        f.field("out_mmap_length", 16, &v.outMmapLength)
    }

    /// `in_data`: echoed to `out_data` and to the first word of the mmap region.
    public var inData: UInt32 = 0
    /// `out_data`: output: `in_data`.
    public var outData: UInt32 = 0
    /// `out_mmap_offset`: output: the `mmap` offset of the vIOMMU's page pair.
    public var outMmapOffset: UInt64 = 0
    /// `out_mmap_length`: output: its length (2 pages).
    public var outMmapLength: UInt64 = 0

    /// An all-zero `struct iommu_viommu_selftest`.
    public init() {}
    /// A value with the given fields, zero by default.
    public init(inData: UInt32 = 0, outData: UInt32 = 0, outMmapOffset: UInt64 = 0, outMmapLength: UInt64 = 0) {
        self.inData = inData
        self.outData = outData
        self.outMmapOffset = outMmapOffset
        self.outMmapLength = outMmapLength
    }
}

/// `struct iommu_viommu_invalidate_selftest`: one mock vIOMMU invalidation entry (`IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST`).
public struct IOMMUVIOMMUInvalidateSelftest: UAPIRecord, Hashable {
    /// The C name: `struct iommu_viommu_invalidate_selftest`.
    public static let cName = "iommu_viommu_invalidate_selftest"
    /// `sizeof(struct iommu_viommu_invalidate_selftest)`: 12 bytes.
    public static let size = 12
    /// The fields of `struct iommu_viommu_invalidate_selftest` in layout order: C name, byte offset, storage.
    @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
        f.field("flags", 0, &v.flags)
        f.field("vdev_id", 4, &v.vdevId)
        f.field("cache_id", 8, &v.cacheId)
    }

    /// `flags`: `IOMMU_TEST_INVALIDATE_FLAG_ALL` or 0.
    public var flags: UInt32 = 0
    /// `vdev_id`: the virtual ID of the device whose cache to clear.
    public var vdevId: UInt32 = 0
    /// `cache_id`: which cache word, 0...3 (ignored with FLAG_ALL).
    public var cacheId: UInt32 = 0

    /// An all-zero `struct iommu_viommu_invalidate_selftest`.
    public init() {}
    /// A value with the given fields, zero by default.
    public init(flags: UInt32 = 0, vdevId: UInt32 = 0, cacheId: UInt32 = 0) {
        self.flags = flags
        self.vdevId = vdevId
        self.cacheId = cacheId
    }
}

/// `struct iommu_viommu_event_selftest`: a mock virtual event (`IOMMU_VEVENTQ_TYPE_SELFTEST`).
public struct IOMMUVIOMMUEventSelftest: UAPIRecord, Hashable {
    /// The C name: `struct iommu_viommu_event_selftest`.
    public static let cName = "iommu_viommu_event_selftest"
    /// `sizeof(struct iommu_viommu_event_selftest)`: 4 bytes.
    public static let size = 4
    /// The fields of `struct iommu_viommu_event_selftest` in layout order: C name, byte offset, storage.
    @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
        f.field("virt_id", 0, &v.virtId)
    }

    /// `virt_id`: the virtual ID of the device the event is about.
    public var virtId: UInt32 = 0

    /// An all-zero `struct iommu_viommu_event_selftest`.
    public init() {}
    /// A value with the given fields, zero by default.
    public init(virtId: UInt32 = 0) {
        self.virtId = virtId
    }
}

/// `struct iommufd_vevent_header`: the header of each virtual event read from a vEVENTQ fd.
public struct IOMMUFDVEventHeader: UAPIRecord, Hashable {
    /// The C name: `struct iommufd_vevent_header`.
    public static let cName = "iommufd_vevent_header"
    /// `sizeof(struct iommufd_vevent_header)`: 8 bytes.
    public static let size = 8
    /// The fields of `struct iommufd_vevent_header` in layout order: C name, byte offset, storage.
    @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
        f.field("flags", 0, &v.flags)
        f.field("sequence", 4, &v.sequence)
    }

    /// `flags`: `IOMMU_VEVENTQ_FLAG_LOST_EVENTS`: events were dropped here; no data follows.
    public var flags: UInt32 = 0
    /// `sequence`: the event's index, from 0, wrapping after `INT_MAX`.
    public var sequence: UInt32 = 0

    /// An all-zero `struct iommufd_vevent_header`.
    public init() {}
    /// A value with the given fields, zero by default.
    public init(flags: UInt32 = 0, sequence: UInt32 = 0) {
        self.flags = flags
        self.sequence = sequence
    }
}
