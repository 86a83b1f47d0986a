/// The type of an IOMMU domain: the kernel's `IOMMU_DOMAIN_*` values, built from the
/// `__IOMMU_DOMAIN_*` flag bits, so `rawValue` matches `iommu_domain.type`.
public struct DomainType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The kernel value (`IOMMU_DOMAIN_DMA` is 3).
    /// The raw flag bits.
    public let rawValue: UInt32
    /// Wraps a kernel domain type value.
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `__IOMMU_DOMAIN_PAGING`: supports map/unmap.
    public static let pagingFlag: UInt32 = 1 << 0
    /// `__IOMMU_DOMAIN_DMA_API`: used by the DMA API.
    public static let dmaAPIFlag: UInt32 = 1 << 1
    /// `__IOMMU_DOMAIN_PT`: identity mapped.
    public static let passthroughFlag: UInt32 = 1 << 2
    /// `__IOMMU_DOMAIN_DMA_FQ`: DMA API with a flush queue (deferred invalidation).
    public static let flushQueueFlag: UInt32 = 1 << 3
    /// `__IOMMU_DOMAIN_SVA`: shares a process address space.
    public static let svaFlag: UInt32 = 1 << 4
    /// `__IOMMU_DOMAIN_PLATFORM`: legacy driver-managed DMA ops.
    public static let platformFlag: UInt32 = 1 << 5
    /// `__IOMMU_DOMAIN_NESTED`: user stage 1 nested on a stage-2 parent.
    public static let nestedFlag: UInt32 = 1 << 6

    /// `IOMMU_DOMAIN_BLOCKED` (0): all DMA blocked.
    public static let blocked = DomainType(rawValue: 0)
    /// `IOMMU_DOMAIN_IDENTITY`: IOVA == PA.
    public static let identity = DomainType(rawValue: passthroughFlag)
    /// `IOMMU_DOMAIN_UNMANAGED`: map/unmap by an API user (VFIO/iommufd, GPU drivers).
    public static let unmanaged = DomainType(rawValue: pagingFlag)
    /// `IOMMU_DOMAIN_DMA`: the kernel DMA-API default domain, strict invalidation.
    public static let dma = DomainType(rawValue: pagingFlag | dmaAPIFlag)
    /// `IOMMU_DOMAIN_DMA_FQ`: DMA API with a flush queue.
    public static let dmaFQ = DomainType(rawValue: pagingFlag | dmaAPIFlag | flushQueueFlag)
    /// `IOMMU_DOMAIN_SVA`: translation is a process's CPU page table.
    public static let sva = DomainType(rawValue: svaFlag)
    /// `IOMMU_DOMAIN_PLATFORM`.
    public static let platform = DomainType(rawValue: platformFlag)
    /// `IOMMU_DOMAIN_NESTED`: a user-managed stage 1 on a stage-2 parent.
    public static let nested = DomainType(rawValue: nestedFlag)

    /// Whether map/unmap are allowed (`__IOMMU_DOMAIN_PAGING`).
    public var isPaging: Bool { rawValue & Self.pagingFlag != 0 }
    /// Whether the DMA API owns the domain (`iommu_is_dma_domain`).
    public var isDMAAPI: Bool { rawValue & Self.dmaAPIFlag != 0 }

    /// The kernel's name for the type.
    public var description: String {
        switch self {
        case .blocked: "BLOCKED"
        case .identity: "IDENTITY"
        case .unmanaged: "UNMANAGED"
        case .dma: "DMA"
        case .dmaFQ: "DMA-FQ"
        case .sva: "SVA"
        case .platform: "PLATFORM"
        case .nested: "NESTED"
        case .kernelSVA: "KVA"
        default: "type 0x\(String(rawValue, radix: 16))"
        }
    }
}

/// Flags for paging-domain allocation: `IOMMU_HWPT_ALLOC_*` as passed to
/// `iommu_ops.domain_alloc_paging_flags`.
public struct DomainAllocFlags: OptionSet, Hashable, Sendable {
    /// The raw flag bits.
    public let rawValue: UInt32
    /// Wraps raw flag bits.
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// `IOMMU_HWPT_ALLOC_NEST_PARENT`: may be the stage-2 parent of nested domains.
    public static let nestParent = DomainAllocFlags(rawValue: 1 << 0)
    /// `IOMMU_HWPT_ALLOC_DIRTY_TRACKING`.
    public static let dirtyTracking = DomainAllocFlags(rawValue: 1 << 1)
    /// `IOMMU_HWPT_FAULT_ID_VALID`.
    public static let faultIDValid = DomainAllocFlags(rawValue: 1 << 2)
    /// `IOMMU_HWPT_ALLOC_PASID`: the domain may be attached to PASIDs.
    public static let pasid = DomainAllocFlags(rawValue: 1 << 3)
}

/// The aperture of a domain (`struct iommu_domain_geometry`).
public struct DomainGeometry: Hashable, Sendable {
    /// First mappable IOVA.
    public var apertureStart: IOVA
    /// Last mappable IOVA (inclusive).
    public var apertureEnd: IOVA
    /// DMA outside the aperture is impossible (not just unmapped).
    public var forceAperture: Bool

    /// A geometry; the default is the whole 64-bit space.
    public init(apertureStart: IOVA = 0, apertureEnd: IOVA = .max, forceAperture: Bool = false) {
        self.apertureStart = apertureStart
        self.apertureEnd = apertureEnd
        self.forceAperture = forceAperture
    }
}

/// Which `iommu_domain_ops` (and `dirty_ops`) a domain implements. The kernel tests the
/// function pointers for NULL; the model asks this set, so a missing op gives the same
/// errno as in the kernel (for example `EOPNOTSUPP` when `set_dev_pasid` is absent).
public struct DomainOps: OptionSet, Hashable, Sendable {
    /// The raw flag bits.
    public let rawValue: UInt32
    /// Wraps raw bits.
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// `attach_dev`.
    public static let attachDev = DomainOps(rawValue: 1 << 0)
    /// `set_dev_pasid`.
    public static let setDevPasid = DomainOps(rawValue: 1 << 1)
    /// `map_pages`.
    public static let mapPages = DomainOps(rawValue: 1 << 2)
    /// `unmap_pages`.
    public static let unmapPages = DomainOps(rawValue: 1 << 3)
    /// `flush_iotlb_all`.
    public static let flushIOTLBAll = DomainOps(rawValue: 1 << 4)
    /// `iotlb_sync_map`.
    public static let iotlbSyncMap = DomainOps(rawValue: 1 << 5)
    /// `iotlb_sync`.
    public static let iotlbSync = DomainOps(rawValue: 1 << 6)
    /// `iova_to_phys`.
    public static let iovaToPhys = DomainOps(rawValue: 1 << 7)
    /// `cache_invalidate_user` (nested domains).
    public static let cacheInvalidateUser = DomainOps(rawValue: 1 << 8)
    /// `dirty_ops` (`set_dirty_tracking`, `read_and_clear_dirty`).
    public static let dirtyTracking = DomainOps(rawValue: 1 << 9)
    /// `set_pgtable_quirks`.
    public static let setPgtableQuirks = DomainOps(rawValue: 1 << 10)

    /// Everything a paging domain normally has.
    public static let paging: DomainOps = [.attachDev, .setDevPasid, .mapPages, .unmapPages, .flushIOTLBAll, .iotlbSync, .iovaToPhys]
}
