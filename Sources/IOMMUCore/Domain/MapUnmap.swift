extension IOMMUSubsystem {
    /// The smallest page size of a domain (`1 << __ffs(pgsize_bitmap)`).
    static func minPageSize(_ domain: IOMMUDomain) -> UInt64 { domain.pgsizeBitmap & (~domain.pgsizeBitmap &+ 1) }

    /// `iommu_map(domain, iova, paddr, size, prot, gfp)`: map `size` bytes, choosing the
    /// largest page sizes the alignment allows (`iommu_pgsize`), then `iotlb_sync_map`.
    /// A failure leaves nothing mapped (what was mapped is unmapped again).
    ///
    /// Concurrency, as in the kernel: `iommu_map`, `iommu_map_sg`, `iommu_unmap`,
    /// `iommu_unmap_fast` and `iommu_iotlb_sync` may run on any number of threads at once
    /// on one domain, while its devices DMA, as long as their IOVA ranges are disjoint
    /// (the DMA API maps from every CPU this way). No domain-wide lock is taken: a page
    /// table installs a missing table level with a compare-and-swap (the loser frees its
    /// page) and frees a table page only when an unmap covers all of it, through the
    /// gather after the IOTLB sync. Overlapping calls at the same time are a caller bug:
    /// the invariant checker reports them (``Invariant/overlappingMapUnmap``); the
    /// mappings they leave are then undefined, but the frame allocator stays intact.
    /// - Throws: `EINVAL` (with a WARN) for a non-paging domain, an empty page-size
    ///   bitmap or a freed domain; `EINVAL` when `iova | paddr | size` is not aligned to
    ///   the smallest page size or the range overflows; `ENODEV` when the domain has no
    ///   `map_pages`; the driver's errno (`ENOMEM`, `EEXIST`, `ERANGE`). Each says which
    ///   rule it broke (``/Platform/Errno/reason``); a failure is logged as `iommukit:error`.
    public func map(_ domain: IOMMUDomain, iova: IOVA, paddr: PhysicalAddress, size: UInt64, prot: IOMMUProt) throws(Errno) {
        let call = beginCall("iommu_map", domain, iova: iova, size: size)
        defer { checker.endCall(call, domain) }
        try unlockedEntry("iommu_map") { () throws(Errno) in
            try mapNoSync(domain, iova: iova, paddr: paddr, size: size, prot: prot)
            if domain.ops.contains(.iotlbSyncMap) {
                do throws(Errno) { try domain.iotlbSyncMap(iova: iova, size: size) } catch {
                    _ = unmap(domain, iova: iova, size: size)
                    throw error
                }
            }
        }
    }

    /// `iommu_map_nosync`: the checks and the page-size loop of `iommu_map`, without
    /// `iotlb_sync_map`. A driver error unmaps what this call mapped.
    func mapNoSync(_ domain: IOMMUDomain, iova: IOVA, paddr: PhysicalAddress, size: UInt64, prot: IOMMUProt) throws(Errno) {
        let f = "iommu_map"
        try checkLive(domain, f)
        guard domain.type.isPaging, domain.pgsizeBitmap != 0 else {
            warn("iommu_map", "\(domain) is not a paging domain")
            throw .invalidArgument.from(f, "\(domain) is not a paging domain")
        }
        guard domain.ops.contains(.mapPages) else { throw .noDevice.from(f, "\(domain) has no map_pages") }
        let minPage = Self.minPageSize(domain)
        guard (iova.rawValue | paddr.rawValue | size) & (minPage - 1) == 0 else {
            throw .invalidArgument.from(f, "iova \(iova), paddr \(paddr) and size 0x\(String(size, radix: 16)) must be aligned to the smallest page, 0x\(String(minPage, radix: 16))")
        }
        guard !iova.addingReportingOverflow(size).overflow, !paddr.addingReportingOverflow(size).overflow else {
            throw .invalidArgument.from(f, "iova \(iova) or paddr \(paddr) + size 0x\(String(size, radix: 16)) overflows")
        }
        var mapped: UInt64 = 0
        do throws(Errno) {
            while mapped < size {
                let (pgsize, count) = iommuPageSize(iova: iova + mapped, paddr: paddr + mapped,
                                                    size: size - mapped, pageSizes: domain.pgsizeBitmap)
                var done: UInt64 = 0
                defer { mapped += done }
                try domain.mapPages(iova: iova + mapped, paddr: paddr + mapped, pgsize: pgsize, pgcount: count,
                                    prot: prot, mapped: &done)
            }
        } catch {
            if mapped > 0 { _ = unmap(domain, iova: iova, size: mapped) }
            throw error
        }
        // The machine's parts held strongly (see IOMMUSubsystem): no unowned load here.
        mapCounters.noteMap()
        events.record(.map(iova: iova, paddr: paddr, size: size))
    }

    /// `iommu_map_sg(domain, iova, sg, nents, prot, gfp)`: map a scatter list of physical
    /// segments back to back from `iova`, with one `iotlb_sync_map` at the end. Returns
    /// the bytes mapped.
    /// - Throws: as ``map(_:iova:paddr:size:prot:)``; on any error everything this call
    ///   mapped is unmapped again.
    @discardableResult
    public func mapSG(_ domain: IOMMUDomain, iova: IOVA, segments: [(paddr: PhysicalAddress, length: UInt64)],
                      prot: IOMMUProt) throws(Errno) -> UInt64 {
        let call = beginCall("iommu_map_sg", domain, iova: iova,
                             size: segments.reduce(0) { $0 &+ $1.length })
        defer { checker.endCall(call, domain) }
        return try unlockedEntry("iommu_map_sg") { () throws(Errno) -> UInt64 in
            var mapped: UInt64 = 0
            do throws(Errno) {
                for seg in segments where seg.length > 0 {
                    try mapNoSync(domain, iova: iova + mapped, paddr: seg.paddr, size: seg.length, prot: prot)
                    mapped += seg.length
                }
                if mapped > 0, domain.ops.contains(.iotlbSyncMap) { try domain.iotlbSyncMap(iova: iova, size: mapped) }
            } catch {
                if mapped > 0 { _ = unmap(domain, iova: iova, size: mapped) }
                throw error
            }
            return mapped
        }
    }

    /// `iommu_unmap(domain, iova, size)`: unmap and synchronously invalidate. Returns the
    /// bytes unmapped, never an errno: 0 for a non-paging or freed domain (WARN), a
    /// misaligned range, a range that wraps past the top of the IOVA space, an unmapped
    /// first IOVA, or a range that would split a larger mapping; at a
    /// hole it stops and returns the bytes up to the hole. Table pages removed are freed
    /// only after the invalidation. May run concurrently with other calls on disjoint
    /// ranges of the domain (see ``map(_:iova:paddr:size:prot:)``).
    public func unmap(_ domain: IOMMUDomain, iova: IOVA, size: UInt64) -> UInt64 {
        var gather = IOTLBGather()
        let unmapped = unmapFast(domain, iova: iova, size: size, gather: &gather)
        iotlbSync(domain, gather: &gather)
        return unmapped
    }

    /// `iommu_unmap_fast(domain, iova, size, gather)`: as ``unmap(_:iova:size:)`` but the
    /// caller must call ``iotlbSync(_:gather:)`` later; until then the IOTLB may still
    /// translate the range (the checker tracks this window). Concurrency as for
    /// ``map(_:iova:paddr:size:prot:)``: disjoint ranges only.
    public func unmapFast(_ domain: IOMMUDomain, iova: IOVA, size: UInt64, gather: inout IOTLBGather) -> UInt64 {
        guard !domain.isFreed else {
            warn("__iommu_unmap", "\(domain) was freed (iommu_domain_free)")
            return 0
        }
        let call = beginCall("iommu_unmap", domain, iova: iova, size: size)
        defer { checker.endCall(call, domain) }
        guard domain.type.isPaging, domain.pgsizeBitmap != 0 else {
            warn("__iommu_unmap", "\(domain) is not a paging domain")
            return 0
        }
        let minPage = Self.minPageSize(domain)
        guard (iova.rawValue | size) & (minPage - 1) == 0, domain.ops.contains(.unmapPages) else { return 0 }
        // A range that wraps past the top of the IOVA space unmaps nothing.
        guard !iova.addingReportingOverflow(size).overflow else { return 0 }
        var unmapped: UInt64 = 0
        while unmapped < size {
            // As the kernel, the IOVA stands in for the physical address: an unmap only
            // needs the page size the IOVA's alignment allows.
            let (pgsize, count) = iommuPageSize(iova: iova &+ unmapped, paddr: PhysicalAddress(identity: iova &+ unmapped),
                                                size: size - unmapped, pageSizes: domain.pgsizeBitmap)
            let n = domain.unmapPages(iova: iova + unmapped, pgsize: pgsize, pgcount: count, gather: &gather)
            if n == 0 { break }
            unmapped += n
        }
        // The machine's parts held strongly (see mapNoSync).
        if unmapped > 0 {
            // Drivers that record nothing still get a sync covering the range.
            if gather.isEmpty { gather.addRange(iova: iova, size: unmapped) }
            checker.openUnmapWindow(domain, start: iova, end: iova &+ (unmapped - 1))
        }
        mapCounters.noteUnmap()
        events.record(.unmap(iova: iova, size: size, unmappedSize: unmapped))
        return unmapped
    }

    /// `iommu_iotlb_sync(domain, gather)`: the driver invalidates what the gather recorded
    /// (only when the gather is not empty), then the table pages on its freelist are freed
    /// (unless a flush queue took the gather over, `gather.queued`). May run while other
    /// threads map and unmap other ranges of the domain.
    public func iotlbSync(_ domain: IOMMUDomain, gather: inout IOTLBGather) {
        guard !gather.isEmpty else {
            if !gather.queued { gather.releaseFreelist(to: memory) }
            gather = IOTLBGather()
            return
        }
        if domain.ops.contains(.iotlbSync) { domain.iotlbSync(&gather) }
        checker.closeUnmapWindows(domain, start: gather.start, end: gather.end)
        if !gather.queued { gather.releaseFreelist(to: memory) }
        gather = IOTLBGather()
    }

    /// `iommu_flush_iotlb_all(domain)`: synchronous full invalidation of the domain.
    public func flushIOTLBAll(_ domain: IOMMUDomain) {
        if domain.ops.contains(.flushIOTLBAll) { domain.flushIOTLBAll() }
        machine.checker.closeUnmapWindows(domain)
    }

    /// Notes a map or unmap call on `[iova, iova + size)` with the invariant checker
    /// (which reports one overlapping another running call); nil while it is off.
    private func beginCall(_ name: String, _ domain: IOMMUDomain, iova: IOVA, size: UInt64) -> Int? {
        guard size != 0 else { return nil }
        return checker.beginCall(name, domain, first: iova, last: iova &+ (size - 1))
    }

    /// `iommu_iova_to_phys(domain, iova)`: IDENTITY returns `iova`, BLOCKED and unmapped
    /// addresses return 0, and so does a freed domain (with a WARN).
    public func iovaToPhys(_ domain: IOMMUDomain, iova: IOVA) -> PhysicalAddress {
        if domain.type == .identity { return PhysicalAddress(identity: iova) }
        if domain.isFreed {
            warn("iommu_iova_to_phys", "\(domain) was freed (iommu_domain_free)")
            return 0
        }
        if domain.type == .blocked || !domain.ops.contains(.iovaToPhys) { return 0 }
        return domain.iovaToPhys(iova)
    }
}
