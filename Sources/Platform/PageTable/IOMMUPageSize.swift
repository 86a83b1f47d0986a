/// Chooses the page size and count for the next chunk of a map or unmap: the kernel's
/// `iommu_pgsize()` (`drivers/iommu/iommu.c`), used by ``IOPageTable/map(iova:paddr:size:prot:pageSizes:)``
/// and the core's `iommu_map`/`iommu_unmap`.
///
/// The chosen size is the largest in `pageSizes` that is no larger than `size` and to
/// which both `iova` and `paddr` are aligned. The count then runs up to the next
/// boundary of the next larger supported size, when the remaining range reaches past a
/// whole larger page and `iova` and `paddr` sit at the same offset within it (otherwise
/// a larger page could never be used, so the count covers all of `size`). The caller
/// maps `count` pages and asks again for the rest.
///
/// Returns `(0, 0)` when no size fits (size below the smallest page, misalignment, or an
/// empty bitmap); the kernel `BUG`s there, callers here check alignment first and get
/// `EINVAL`.
@inlinable
public func iommuPageSize(iova: IOVA, paddr: PhysicalAddress, size: UInt64, pageSizes: UInt64) -> (pgsize: UInt64, count: Int) {
    let iova = iova.rawValue, paddr = paddr.rawValue
    guard size != 0 else { return (0, 0) }
    // Sizes no larger than `size`: bits 0 ... floor(log2(size)).
    let topBit = 63 - size.leadingZeroBitCount
    var candidates = pageSizes & (topBit == 63 ? ~0 : (UInt64(1) << UInt64(topBit + 1)) - 1)
    // Sizes no larger than the common alignment of iova and paddr.
    let merged = iova | paddr
    if merged != 0 {
        let align = merged.trailingZeroBitCount
        candidates &= align == 63 ? ~0 : (UInt64(1) << UInt64(align + 1)) - 1
    }
    guard candidates != 0 else { return (0, 0) }
    let shift = 63 - candidates.leadingZeroBitCount
    let pgsize = UInt64(1) << UInt64(shift)

    var span = size
    let larger = pageSizes & ~((pgsize << 1) &- 1)
    if larger != 0 {
        let next = UInt64(1) << UInt64(larger.trailingZeroBitCount)
        // Only worth stopping at the boundary if both sides can reach it together.
        if (iova ^ paddr) & (next - 1) == 0 {
            let toBoundary = next - (merged & (next - 1))
            if toBoundary + next <= size { span = toBoundary }
        }
    }
    return (pgsize, Int(span >> UInt64(shift)))
}
