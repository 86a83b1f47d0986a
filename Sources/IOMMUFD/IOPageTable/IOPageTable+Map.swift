import IOMMUCore

/// A slice of pages to place at consecutive IOVAs (`struct iopt_pages_list`).
struct IOPTPagesSlice {
    var pages: IOPTPages
    var startByte: UInt64
    var length: UInt64
}

extension IOPageTableState {
    /// `iopt_map_pages`: create one area per slice at consecutive IOVAs starting at `iova`
    /// (chosen by ``allocIOVA(addr:length:)`` when `allocIOVA`), pin and map them into
    /// every domain. Nothing remains on error.
    /// - Throws: `ENOMEM` (area allocation); `EINVAL` zero or misaligned length,
    ///   misaligned IOVA or page offset, reserved overlap; `EEXIST` overlap with an area;
    ///   `EOVERFLOW`; `ENOSPC`; `EPERM` write to read-only pages; pin and domain errors.
    ///
    /// Generic over the collection so that `IOMMU_IOAS_MAP`'s single slice goes in a
    /// `CollectionOfOne` rather than a freshly allocated array.
    func mapPages<Slices: RandomAccessCollection<IOPTPagesSlice>>(
        _ slices: Slices, length: UInt64, iova: inout UInt64, prot: IOMMUProt, allocIOVA: Bool
    ) throws(Errno) {
        let f = "iopt_map_pages"
        if faultInjection.shouldFail() { throw .noMemory.from(f, "allocation failed by injection") }
        guard length != 0 else { throw .invalidArgument.from(f, "length is 0") }
        guard length & (iovaAlignment - 1) == 0 else {
            throw .invalidArgument.from(f, "length 0x\(String(length, radix: 16)) is not a multiple of the IOVA alignment 0x\(String(iovaAlignment, radix: 16))")
        }
        if allocIOVA {
            let first = slices[slices.startIndex]
            iova = try self.allocIOVA(addr: first.pages.uptr &+ first.startByte, length: length)
        } else {
            try checkIOVA(iova, length)
        }
        // The first area is held on its own and only further ones go in an array, so the
        // usual single-slice call (`IOMMU_IOAS_MAP`) allocates no array.
        var firstArea: IOPTArea?
        var moreAreas: [IOPTArea] = []
        var at = iova
        for s in slices {
            if prot.contains(.write) && !s.pages.writable {
                throw .notPermitted.from(f, "a writeable mapping of read-only pages")
            }
            let area = IOPTArea(iova: at, length: s.length, pages: s.pages, startByte: s.startByte, prot: prot)
            if area.pageOffset & (iovaAlignment - 1) != 0 {
                throw .invalidArgument.from(f, "the pages start at offset 0x\(String(area.pageOffset, radix: 16)) in their page, not aligned to 0x\(String(iovaAlignment, radix: 16))")
            }
            guard !at.addingReportingOverflow(s.length - 1).overflow else {
                throw .overflow.from(f, "iova 0x\(String(at, radix: 16)) + 0x\(String(s.length, radix: 16)) overflows")
            }
            if firstArea == nil { firstArea = area } else { moreAreas.append(area) }
            at &+= s.length
        }
        guard let firstArea else { return }
        if !domains.isEmpty {
            // A prefix count of the areas filled (in order) is all the rollback needs.
            var filled = 0
            do throws(Errno) {
                try fill(firstArea, domains: domains, pinFirst: true)
                filled += 1
                for area in moreAreas {
                    try fill(area, domains: domains, pinFirst: true)
                    filled += 1
                }
            } catch {
                for k in 0..<filled {
                    let area = k == 0 ? firstArea : moreAreas[k - 1]
                    for d in domains { area.unmap(from: d, core: core) }
                    unpinFill(area)
                }
                throw error
            }
        }
        insert(firstArea)
        for area in moreAreas { insert(area) }
    }

    /// `iopt_check_iova`.
    /// - Throws: `EINVAL` misaligned or touching a reserved range; `EOVERFLOW`;
    ///   `EEXIST` overlapping an area.
    func checkIOVA(_ iova: UInt64, _ length: UInt64) throws(Errno) {
        let f = "iopt_check_iova"
        guard iova & (iovaAlignment - 1) == 0 else {
            throw .invalidArgument.from(f, "iova 0x\(String(iova, radix: 16)) is not aligned to 0x\(String(iovaAlignment, radix: 16))")
        }
        let (last, o) = iova.addingReportingOverflow(length - 1)
        guard !o else { throw .overflow.from(f, "iova 0x\(String(iova, radix: 16)) + length 0x\(String(length, radix: 16)) overflows") }
        if reservedIntersects(iova, last) {
            throw .invalidArgument.from(f, "[0x\(String(iova, radix: 16)), 0x\(String(last, radix: 16))] meets a reserved range")
        }
        if anyArea(intersecting: iova, last) {
            throw .exists.from(f, "[0x\(String(iova, radix: 16)), 0x\(String(last, radix: 16))] overlaps a mapped area")
        }
    }

    /// `iopt_alloc_iova`: the lowest free IOVA in the allowed ranges (or the whole space
    /// minus page 0 and the last page) that is neither reserved nor mapped, aligned to the
    /// natural alignment of `length` and `addr` (at most the huge page size) and keeping
    /// `addr`'s page offset.
    /// - Throws: `EOVERFLOW` zero or huge length; `EINVAL` the alignment is below the
    ///   IOAS's; `ENOSPC` no hole fits.
    func allocIOVA(addr: UInt64, length: UInt64) throws(Errno) -> UInt64 {
        let pageOffset = addr % Self.pageSize
        guard length != 0, length < UInt64.max / 2 else { throw .overflow.from("iopt_alloc_iova", "length 0x\(String(length, radix: 16)) is 0 or too large") }
        let pow2: UInt64 = length <= 1 ? 1 : 1 << UInt64(64 - (length - 1).leadingZeroBitCount)
        var alignment = addr == 0 ? pow2 : min(pow2, UInt64(1) << UInt64(addr.trailingZeroBitCount))
        if alignment >= Self.hugePageSize { alignment = Self.hugePageSize }
        guard alignment >= iovaAlignment else {
            throw .invalidArgument.from("iopt_alloc_iova", "the user address's alignment 0x\(String(alignment, radix: 16)) is below the IOAS's 0x\(String(iovaAlignment, radix: 16))")
        }

        let windowStart = Self.pageSize, windowLast = UInt64.max - Self.pageSize
        let spans: [(UInt64, UInt64)] = allowed.isEmpty
            ? [(windowStart, windowLast)]
            : allowed.compactMap { r in
                let s = max(r.start, windowStart), l = min(r.last, windowLast)
                return s <= l ? (s, l) : nil
            }
        for (spanStart, spanLast) in spans {
            guard let s = Self.fit(spanStart, spanLast, length, alignment, pageOffset) else { continue }
            for (holeStart, holeLast) in holes(s, spanLast) {
                if let iova = Self.fit(holeStart, holeLast, length, alignment, pageOffset) { return iova }
            }
        }
        throw .noSpace.from("iopt_alloc_iova", "no free IOVA range of 0x\(String(length, radix: 16)) bytes aligned to 0x\(String(alignment, radix: 16))")
    }

    /// `__alloc_iova_check_range`: the aligned start inside `[start, last]`, or nil.
    static func fit(_ start: UInt64, _ last: UInt64, _ length: UInt64, _ alignment: UInt64,
                    _ pageOffset: UInt64) -> UInt64? {
        let (up, o) = start.addingReportingOverflow(alignment - 1)
        guard !o else { return nil }
        let aligned = (up & ~(alignment - 1)) | pageOffset
        guard aligned < last, last - aligned >= length - 1 else { return nil }
        return aligned
    }

    /// Gaps of (reserved ∪ areas) inside `[from, to]`, ascending.
    func holes(_ from: UInt64, _ to: UInt64) -> [(UInt64, UInt64)] {
        var used: [(UInt64, UInt64)] = reserved.filter { $0.start <= to && from <= $0.last }.map { ($0.start, $0.last) }
        used += areas(intersecting: from, to).map { ($0.iova, $0.last) }
        used.sort { $0.0 < $1.0 }
        var out: [(UInt64, UInt64)] = []
        var cursor = from
        for (s, l) in used {
            if s > cursor { out.append((cursor, s - 1)) }
            if l >= to { return out }
            cursor = max(cursor, l + 1)
        }
        out.append((cursor, to))
        return out
    }

    /// `iopt_get_pages`: the slices behind `[iova, iova + length - 1]`, which must be
    /// covered by adjacent areas.
    /// - Throws: `EINVAL` zero length; `EOVERFLOW`; `ENOENT` not fully covered.
    func getPages(iova: UInt64, length: UInt64) throws(Errno) -> [IOPTPagesSlice] {
        let f = "iopt_get_pages"
        guard length != 0 else { throw .invalidArgument.from(f, "length is 0") }
        let (last, o) = iova.addingReportingOverflow(length - 1)
        guard !o else { throw .overflow.from(f, "iova 0x\(String(iova, radix: 16)) + length 0x\(String(length, radix: 16)) overflows") }
        var out: [IOPTPagesSlice] = []
        var cur = iova
        guard var area = areas.area(containing: cur) else { throw .noEntry.from(f, "iova 0x\(String(cur, radix: 16)) is not mapped") }
        while true {
            let end = min(last, area.last)
            out.append(IOPTPagesSlice(pages: area.pages, startByte: area.startByte(at: cur), length: end - cur + 1))
            if end == last { break }
            cur = end + 1
            guard let next = areas.area(startingAt: cur) else { throw .noEntry.from(f, "iova 0x\(String(cur, radix: 16)) is not mapped") }
            area = next
        }
        if faultInjection.shouldFail() { throw .noMemory.from(f, "allocation failed by injection") }
        return out
    }

    /// `iopt_unmap_iova_range`: remove every area inside `[start, last]`.
    /// Returns the errno (nil on success) and the bytes unmapped, which are reported
    /// even on error. `EBUSY` for an area a HW queue locks; `ENOENT` for an area cut by
    /// the range or when nothing was unmapped; `EDEADLOCK` when accesses do not unpin
    /// after 100 unmap callbacks.
    func unmapRange(_ start: UInt64, _ last: UInt64) -> (Errno?, UInt64) {
        var start = start
        var unmapped: UInt64 = 0
        var tries = 0
        while let p = areas.firstIntersecting(start, last) {
            let area = areas[p]
            // Locked by an object not yet destroyed (a HW queue's pinned memory).
            if area.numLocks > 0 { return (.busy.from("iopt_unmap_iova_range", "the area at 0x\(String(area.iova, radix: 16)) is locked by a HW queue"), unmapped) }
            if area.iova < start || area.last > last { return (.noEntry.from("iopt_unmap_iova_range", "the area [0x\(String(area.iova, radix: 16)), 0x\(String(area.last, radix: 16))] is cut by the range"), unmapped) }
            if area.iova != start { tries = 0 }
            if area.numAccesses > 0 {
                start = area.iova
                area.preventAccess = true
                ctx.notifyAccessUnmap(self, iova: area.iova, length: area.length)
                tries += 1
                if tries > 100 {
                    ctx.warn("iopt_unmap_iova_range", "an access does not unpin on unmap")
                    return (.deadlock.from("iopt_unmap_iova_range", "an access still pins 0x\(String(area.iova, radix: 16)) after 100 unmap callbacks"), unmapped)
                }
                continue
            }
            areas.remove(at: p)
            for d in domains { area.unmap(from: d, core: core) }
            unpinFill(area)
            unmapped += area.length
        }
        return (unmapped > 0 ? nil : .noEntry.from("iopt_unmap_iova_range", "nothing is mapped in [0x\(String(start, radix: 16)), 0x\(String(last, radix: 16))]"), unmapped)
    }

    /// `iopt_unmap_iova`.
    func unmap(iova: UInt64, length: UInt64) -> (Errno?, UInt64) {
        guard length != 0 else { return (.invalidArgument.from("iopt_unmap_iova", "length is 0"), 0) }
        let (last, o) = iova.addingReportingOverflow(length - 1)
        guard !o else { return (.overflow.from("iopt_unmap_iova", "iova 0x\(String(iova, radix: 16)) + length 0x\(String(length, radix: 16)) overflows"), 0) }
        return unmapRange(iova, last)
    }

    /// `iopt_unmap_all`: an empty IOAS succeeds with 0 bytes.
    func unmapAll() -> (Errno?, UInt64) {
        let (e, n) = unmapRange(0, .max)
        return (e == .noEntry ? nil : e, n)
    }

    /// `iopt_area_split`: split the area holding `iova` so that `iova` ends the first
    /// part (VFIO type1 v1 compatibility).
    /// - Throws: `EBUSY` an unmap is pending; `EINVAL` misaligned cut, pins from an
    ///   access, or a domain that may hold large pages.
    func split(at iova: UInt64) throws(Errno) {
        guard let area = areas.area(containing: iova) else { return }
        if iova == area.iova || iova == area.last { return }
        let f = "iopt_area_split"
        if area.preventAccess { throw .busy.from(f, "an unmap of the area is pending") }
        let newStart = iova + 1
        if newStart & (iovaAlignment - 1) != 0 || area.startByte(at: newStart) & (iovaAlignment - 1) != 0 {
            throw .invalidArgument.from(f, "a cut after 0x\(String(iova, radix: 16)) is not aligned to 0x\(String(iovaAlignment, radix: 16))")
        }
        if faultInjection.shouldFail() { throw .noMemory.from(f, "allocation failed by injection") }
        if area.numAccesses > 0 { throw .invalidArgument.from(f, "an access pins pages of the area") }
        if area.filled && !disableLargePages { throw .invalidArgument.from(f, "a domain may map the area with large pages") }
        let rhs = IOPTArea(iova: newStart, length: area.last - newStart + 1, pages: area.pages,
                           startByte: area.startByte(at: newStart), prot: area.prot)
        // The cut is page aligned (a filled area is only split with large pages off, so the
        // IOVA alignment is PAGE_SIZE): the two halves hold exactly the pages the whole
        // held, each page by one of them.
        area.length = newStart - area.iova
        rhs.filled = area.filled
        insert(rhs)
    }
}
