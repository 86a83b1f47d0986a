/// The IOVA range and page-table pages collected by an unmap, waiting for one IOTLB
/// flush: the kernel's `struct iommu_iotlb_gather` (`include/linux/iommu.h`).
///
/// Page-table pages unlinked by an unmap go on ``freelist`` and stay allocated until the
/// caller has flushed the IOTLB (`iommu_iotlb_sync`) and calls
/// ``releaseFreelist(to:)``: a walker may still hold a cached pointer to them until then
/// (`iommu_put_pages_list` after `iommu_iotlb_sync`). The list only grows when a table is freed, so unmapping one page
/// from a table that stays in use allocates nothing.
public struct IOTLBGather: Sendable {
    /// First IOVA gathered; ``IOVA/max`` when empty (`ULONG_MAX` in the kernel).
    public var start: IOVA
    /// Last IOVA gathered, inclusive; 0 when empty.
    public var end: IOVA
    /// Smallest leaf size gathered, 0 when empty (SMMUv3 uses it as the invalidation
    /// granule, as `iommu_iotlb_gather_add_page` records it).
    public var pgsize: UInt64
    /// Physical addresses of page-table pages unlinked and not yet freed.
    public var freelist: [PhysicalAddress]
    /// A flush-all will follow, so no range flush is needed (`DMA-FQ`).
    public var queued: Bool

    /// An empty gather (`iommu_iotlb_gather_init`). Inlinable: every map and unmap of
    /// the core and the drivers (other modules) starts one.
    @inlinable
    public init() {
        start = .max
        end = 0
        pgsize = 0
        freelist = []
        queued = false
    }

    /// Whether nothing was gathered (`start > end`: the kernel's sync is skipped).
    @inlinable public var isEmpty: Bool { start > end }

    /// Extends the range to cover `[iova, iova + size)`:
    /// `iommu_iotlb_gather_add_range`.
    @inlinable @inline(__always)
    public mutating func addRange(iova: IOVA, size: UInt64) {
        guard size != 0 else { return }
        let last = iova &+ (size &- 1)
        if iova < start { start = iova }
        if last > end { end = last }
        if pgsize == 0 || size < pgsize { pgsize = size }
    }

    /// Whether `[iova, iova + size)` neither overlaps nor touches the gathered range:
    /// `iommu_iotlb_gather_is_disjoint`. A driver that flushes by range syncs before
    /// gathering a disjoint range so that one flush never spans a large gap.
    @inlinable
    public func isDisjoint(iova: IOVA, size: UInt64) -> Bool {
        guard !isEmpty, size != 0 else { return false }
        let last = iova &+ (size &- 1)
        return last &+ 1 < start || iova > end &+ 1
    }

    /// Frees every page-table page on the freelist and empties it: what the kernel does
    /// with `gather->freelist` after `iommu_iotlb_sync` (`iommu_put_pages_list`).
    public mutating func releaseFreelist(to memory: PhysicalMemory) {
        for pa in freelist { memory.freeFrame(pa) }
        freelist.removeAll(keepingCapacity: true)
    }
}
