import IOMMUCore

/// A reserved IOVA range (`struct iopt_reserved`) and who reserved it: a domain's
/// aperture, a device's reserved regions, or nobody (the selftest's ADD_RESERVED).
struct IOPTReserved {
    var start: UInt64
    var last: UInt64
    var owner: ObjectIdentifier?
}

/// The IOVA side of an IOAS (`struct io_pagetable`, `io_pagetable.c`): areas, allowed
/// ranges, reserved ranges, the attached paging domains and the accesses, and the IOVA
/// alignment they impose. Every map goes to every domain; every unmap leaves all of them.
package final class IOPageTableState: @unchecked Sendable {
    static let pageSize = IOPTPages.pageSize
    /// `HPAGE_SIZE` with transparent huge pages.
    static let hugePageSize: UInt64 = 2 << 20

    unowned(unsafe) let ctx: IOMMUFD
    /// Areas ordered by IOVA, non-overlapping (`area_itree`).
    var areas = IOPTAreaIndex()
    /// `allowed_itree`.
    var allowed: [IOMMUIOVARange] = []
    /// `reserved_itree`.
    var reserved: [IOPTReserved] = []
    /// `iopt->domains`, in attach order.
    var domains: [IOMMUDomain] = []
    /// `iopt->access_list`.
    var accesses: [AccessObject] = []
    /// `iopt->iova_alignment`.
    var iovaAlignment: UInt64 = 1
    /// `iopt->disable_large_pages`.
    var disableLargePages = false

    /// The machine's IOMMU core, held directly: going through `ctx.machine` on every map
    /// and unmap retained the machine, which devices refer to weakly, so each retain took
    /// the slow side-table path. The core is the machine's for its whole life.
    let core: IOMMUSubsystem
    /// The context's fault injection (`ctx.faultInjection`, a constant), held directly for
    /// the same reason: `ctx.shouldFail()` on every map retained the context, which
    /// device groups refer to weakly (slow side-table refcounting).
    let faultInjection: FaultInjection

    init(ctx: IOMMUFD) {
        self.ctx = ctx
        core = ctx.machine.iommu
        faultInjection = ctx.faultInjection
    }

    // MARK: lookups

    /// `iopt_area_iter_first(iopt, start, last)`: areas intersecting `[start, last]`.
    func areas(intersecting start: UInt64, _ last: UInt64) -> [IOPTArea] {
        var out: [IOPTArea] = []
        var p = areas.firstIntersecting(start, last)
        while let q = p, areas.iova(at: q) <= last {
            out.append(areas[q])
            p = areas.next(q)
        }
        return out
    }

    /// Whether any area intersects `[start, last]`, without building the list.
    func anyArea(intersecting start: UInt64, _ last: UInt64) -> Bool {
        areas.firstIntersecting(start, last) != nil
    }

    func reservedIntersects(_ start: UInt64, _ last: UInt64) -> Bool {
        reserved.contains { $0.start <= last && start <= $0.last }
    }

    func allowedIntersects(_ start: UInt64, _ last: UInt64) -> Bool {
        allowed.contains { $0.start <= last && start <= $0.last }
    }

    func insert(_ area: IOPTArea) { areas.insert(area) }

    func remove(_ area: IOPTArea) { areas.remove(area) }

    // MARK: reserved and allowed

    /// `iopt_reserve_iova`.
    /// - Throws: `EADDRINUSE` when `[start, last]` meets an area or an allowed range.
    package func reserve(_ start: UInt64, _ last: UInt64, owner: ObjectIdentifier?) throws(Errno) {
        if anyArea(intersecting: start, last) {
            throw .addressInUse.from("iopt_reserve_iova", "[0x\(String(start, radix: 16)), 0x\(String(last, radix: 16))] meets a mapped area")
        }
        if allowedIntersects(start, last) {
            throw .addressInUse.from("iopt_reserve_iova", "[0x\(String(start, radix: 16)), 0x\(String(last, radix: 16))] meets an allowed range")
        }
        reserved.append(IOPTReserved(start: start, last: last, owner: owner))
    }

    /// `iopt_remove_reserved_iova(iopt, owner)`.
    func removeReserved(owner: ObjectIdentifier?) { reserved.removeAll { $0.owner == owner } }

    /// `iopt_set_allow_iova`: replace the allowed list atomically.
    /// - Throws: `EADDRINUSE` when a new range meets a reserved range (the old list stays).
    func setAllowed(_ ranges: [IOMMUIOVARange]) throws(Errno) {
        for r in ranges where reservedIntersects(r.start, r.last) {
            throw .addressInUse.from("iopt_set_allow_iova", "[0x\(String(r.start, radix: 16)), 0x\(String(r.last, radix: 16))] meets a reserved range")
        }
        allowed = ranges.sorted { $0.start < $1.start }
    }

    /// The holes of the reserved list over `[0, ULONG_MAX]` (`IOMMU_IOAS_IOVA_RANGES`).
    func iovaRanges() -> [IOMMUIOVARange] {
        let sorted = reserved.sorted { $0.start < $1.start }
        var out: [IOMMUIOVARange] = []
        var cursor: UInt64 = 0
        var done = false
        for r in sorted {
            if r.last < cursor { continue }
            if r.start > cursor { out.append(IOMMUIOVARange(start: cursor, last: r.start - 1)) }
            if r.last == .max { done = true; break }
            cursor = max(cursor, r.last + 1)
        }
        if !done { out.append(IOMMUIOVARange(start: cursor, last: .max)) }
        return out
    }

    // MARK: alignment

    /// `iopt_check_iova_alignment`: every area must already meet `alignment`.
    /// - Throws: `EADDRINUSE`.
    func checkAlignment(_ alignment: UInt64) throws(Errno) {
        let mask = alignment - 1
        for a in areas where a.iova & mask != 0 || a.length & mask != 0 || a.pageOffset & mask != 0 {
            throw .addressInUse.from("iopt_check_iova_alignment", "the area at 0x\(String(a.iova, radix: 16)) is not aligned to 0x\(String(alignment, radix: 16))")
        }
    }

    /// `iopt_calculate_iova_alignment`.
    /// - Throws: `EADDRINUSE` when the alignment would grow past an existing area's.
    func recalculateAlignment() throws(Errno) {
        var a: UInt64 = disableLargePages ? Self.pageSize : 1
        for d in domains { a = max(a, Self.minPageSize(d)) }
        for acc in accesses { a = max(a, acc.iovaAlignment) }
        if a > iovaAlignment { try checkAlignment(a) }
        iovaAlignment = a
    }

    static func minPageSize(_ d: IOMMUDomain) -> UInt64 { d.pgsizeBitmap & (~d.pgsizeBitmap &+ 1) }

    /// `iopt_disable_large_pages`.
    /// - Throws: `EINVAL` when a domain is attached and areas exist; `EADDRINUSE` when an
    ///   area is not page aligned (the flag stays off).
    func disableLarge() throws(Errno) {
        if disableLargePages { return }
        if !domains.isEmpty && !areas.isEmpty {
            throw .invalidArgument.from("iopt_disable_large_pages", "the IOAS has domains and mapped areas")
        }
        disableLargePages = true
        do { try recalculateAlignment() } catch {
            disableLargePages = false
            throw error
        }
    }

    /// `iopt_enable_large_pages`.
    func enableLarge() {
        disableLargePages = false
        try? recalculateAlignment()
    }

    // MARK: domains

    /// `iopt_table_add_domain`: raise the alignment, reserve outside the aperture, and
    /// fill the domain with every area (pinning as needed). On error nothing changes.
    /// - Throws: `EINVAL` page size above PAGE_SIZE; `EADDRINUSE` misaligned areas or an
    ///   aperture meeting areas/allowed ranges; pinning and mapping errors.
    func addDomain(_ domain: IOMMUDomain) throws(Errno) {
        let newAlignment = max(Self.minPageSize(domain), iovaAlignment)
        guard newAlignment <= Self.pageSize else {
            throw .invalidArgument.from("iopt_table_add_domain", "\(domain)'s smallest page 0x\(String(newAlignment, radix: 16)) is above PAGE_SIZE")
        }
        if newAlignment != iovaAlignment { try checkAlignment(newAlignment) }
        let owner = ObjectIdentifier(domain)
        do throws(Errno) {
            let g = domain.geometry
            if g.apertureStart != 0 { try reserve(0, g.apertureStart.rawValue - 1, owner: owner) }
            if g.apertureEnd != .max { try reserve(g.apertureEnd.rawValue + 1, .max, owner: owner) }
            var done: [IOPTArea] = []
            do throws(Errno) {
                for area in areas {
                    try fill(area, domains: [domain], pinFirst: !area.filled)
                    done.append(area)
                }
            } catch {
                for area in done {
                    area.unmap(from: domain, core: core)
                    if domains.isEmpty { unpinFill(area) }
                }
                throw error
            }
        } catch {
            removeReserved(owner: owner)
            throw error
        }
        iovaAlignment = newAlignment
        domains.append(domain)
    }

    /// `iopt_table_remove_domain`: unmap every area from the domain (unpinning when it
    /// was the last domain), drop its reservations and recompute the alignment.
    func removeDomain(_ domain: IOMMUDomain) {
        guard domains.contains(where: { $0 === domain }) else { return }
        domains.removeAll { $0 === domain }
        for area in areas {
            area.unmap(from: domain, core: core)
            if domains.isEmpty && area.filled { unpinFill(area) }
        }
        removeReserved(owner: ObjectIdentifier(domain))
        try? recalculateAlignment()
    }

    /// `iopt_area_fill_domain(s)`: reads `area`'s pages through a `pfn_reader` (pinning
    /// them and making the area their holder if `pinFirst`, i.e. the area was not filled
    /// yet) and maps it into `domains`; on error undoes both.
    func fill(_ area: IOPTArea, domains targets: [IOMMUDomain], pinFirst: Bool) throws(Errno) {
        try area.pages.readForDomain(area.pageRange, holdForArea: pinFirst)
        // Counts rather than collects the domains done: this runs for every IOAS_MAP, and
        // the targets are mapped in order, so a prefix count is all the rollback needs.
        var mapped = 0
        do throws(Errno) {
            for i in targets.indices {
                try area.map(into: targets[i], core: core, smallPages: disableLargePages)
                mapped += 1
            }
        } catch {
            for i in 0..<mapped { area.unmap(from: targets[i], core: core) }
            if pinFirst { area.pages.releaseForDomain(area.pageRange) }
            throw error
        }
        if pinFirst { area.filled = true }
    }

    func unpinFill(_ area: IOPTArea) {
        guard area.filled else { return }
        area.pages.releaseForDomain(area.pageRange)
        area.filled = false
    }
}
