import IOMMUCore

/// One mapped IOVA range of an IOAS (`struct iopt_area`): a slice of an ``IOPTPages``
/// placed at an IOVA. Every `IOMMU_IOAS_MAP` makes one area, a COPY one or more; areas
/// are the unit of unmap and are never split (except by the VFIO type1 compatibility
/// path, which cuts them when large pages are off).
final class IOPTArea: @unchecked Sendable {
    /// First IOVA (`node.start`).
    var iova: UInt64
    /// Length in bytes.
    var length: UInt64
    /// The backing pages.
    let pages: IOPTPages
    /// Byte offset of the area's first byte within ``pages``.
    var startByte: UInt64
    /// `iommu_prot` of the mapping.
    let prot: IOMMUProt
    /// The area's pages are pinned and mapped on behalf of the IOAS's domains
    /// (`area->storage_domain != NULL`).
    var filled = false
    /// `num_accesses`: access pins inside the area.
    var numAccesses = 0
    /// `prevent_access`: an unmap is waiting for accesses to unpin.
    var preventAccess = false
    /// `num_locks`: pins of internal accesses (HW queues); the area cannot be unmapped
    /// (`EBUSY`) while any remains.
    var numLocks = 0

    init(iova: UInt64, length: UInt64, pages: IOPTPages, startByte: UInt64, prot: IOMMUProt) {
        self.iova = iova
        self.length = length
        self.pages = pages
        self.startByte = startByte
        self.prot = prot
    }

    /// `iopt_area_last_iova`: `iova + (length - 1)`, which is at most `ULONG_MAX` for an
    /// area ending at the top of the IOVA space (`iova + length` would wrap to 0). Every
    /// area has a length of at least 1 and fits (checked when it is made).
    var last: UInt64 { iova &+ (length &- 1) }
    /// `area->page_offset`.
    var pageOffset: UInt64 { startByte % IOPTPages.pageSize }
    /// `iopt_area_start_byte(area, iova)`.
    func startByte(at iova: UInt64) -> UInt64 { startByte + (iova - self.iova) }
    /// The page indexes of the area within its pages.
    var pageRange: ClosedRange<Int> { IOPTPages.pageRange(startByte: startByte, length: length) }
    /// Page indexes of the IOVA sub-range `[from, to]`.
    func pageRange(_ from: UInt64, _ to: UInt64) -> ClosedRange<Int> {
        IOPTPages.pageRange(startByte: startByte(at: from), length: to - from + 1)
    }

    /// Maps the (pinned) area into `domain` with `iommu_map`, in runs of physically
    /// contiguous bytes, or page by page when large pages are disabled. On failure
    /// whatever was mapped is unmapped again.
    func map(into domain: IOMMUDomain, core: IOMMUSubsystem, smallPages: Bool) throws(Errno) {
        var done: UInt64 = 0
        do throws(Errno) {
            while done < length {
                let pa = pages.physicalAddress(ofByte: startByte + done)
                var run = min(IOPTPages.pageSize - pa.offset(within: IOPTPages.pageSize), length - done)
                if !smallPages {
                    while done + run < length {
                        let next = pages.physicalAddress(ofByte: startByte + done + run)
                        guard next == pa + run else { break }
                        run += min(IOPTPages.pageSize, length - done - run)
                    }
                }
                try core.map(domain, iova: IOVA(rawValue: iova + done), paddr: pa, size: run, prot: prot)
                done += run
            }
        } catch {
            if done > 0 { _ = core.unmap(domain, iova: IOVA(rawValue: iova), size: done) }
            throw error
        }
    }

    /// Removes the area from `domain` (`iopt_area_unmap_domain`).
    func unmap(from domain: IOMMUDomain, core: IOMMUSubsystem) {
        _ = core.unmap(domain, iova: IOVA(rawValue: iova), size: length)
    }
}
