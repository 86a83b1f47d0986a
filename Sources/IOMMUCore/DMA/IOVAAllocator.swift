/// An IOVA space allocator: the model of `struct iova_domain` (`drivers/iommu/iova.c`)
/// as the DMA API uses it. Allocation is top-down and size-aligned, like
/// `alloc_iova_fast(iovad, size, limit, size_aligned = true)`: the highest free range
/// below the limit, aligned to the size rounded up to a power of two granules.
/// Reserved ranges (`reserve_iova`) are never handed out.
///
/// Not locked: the DMA API calls it under the core lock.
final class IOVAAllocator {
    /// `iovad->granule`: the smallest page size of the domain.
    let granule: UInt64
    /// Lowest allocatable IOVA (`start_pfn << shift`, never 0).
    let lowest: UInt64
    /// Allocated and reserved ranges [first, last], sorted by first (raw IOVAs: the
    /// allocator is arithmetic on them).
    private var ranges: [(first: UInt64, last: UInt64)] = []

    init(granule: UInt64, lowest: IOVA) {
        self.granule = granule
        self.lowest = max(lowest.rawValue, granule)
    }

    /// `reserve_iova`: keeps [first, last] out of every allocation.
    func reserve(first: IOVA, last: IOVA) {
        insert(first.alignedDown(to: granule).rawValue, last.rawValue | (granule - 1))
    }

    /// `alloc_iova_fast`: `size` bytes (a multiple of the granule) at or below `limit`
    /// (inclusive), or nil when the space is exhausted.
    func alloc(size: UInt64, limit: IOVA) -> IOVA? {
        guard size >= granule, size % granule == 0 else { return nil }
        var pages = size / granule
        pages = pages.nonzeroBitCount == 1 ? pages : 1 << (64 - UInt64(pages.leadingZeroBitCount))
        let align = granule &* pages
        guard align != 0 else { return nil }
        var ceiling = limit.rawValue
        while ceiling >= lowest, ceiling - lowest >= size - 1 {
            let candidate = (ceiling - (size - 1)) & ~(align - 1)
            guard candidate >= lowest else { return nil }
            let last = candidate + size - 1
            // The highest range that overlaps the candidate, if any: move below it.
            if let blocker = ranges.last(where: { $0.first <= last && $0.last >= candidate }) {
                guard blocker.first > 0 else { return nil }
                ceiling = blocker.first - 1
                continue
            }
            insert(candidate, last)
            return IOVA(rawValue: candidate)
        }
        return nil
    }

    /// `free_iova`: releases the allocation starting at `first`. Returns false if no
    /// allocation starts there.
    @discardableResult
    func free(first: IOVA) -> Bool {
        guard let i = ranges.firstIndex(where: { $0.first == first.rawValue }) else { return false }
        ranges.remove(at: i)
        return true
    }

    /// Whether any allocated or reserved range covers `iova`.
    func contains(_ iova: IOVA) -> Bool { ranges.contains { $0.first <= iova.rawValue && iova.rawValue <= $0.last } }

    private func insert(_ first: UInt64, _ last: UInt64) {
        let i = ranges.firstIndex { $0.first > first } ?? ranges.count
        ranges.insert((first, last), at: i)
    }
}
