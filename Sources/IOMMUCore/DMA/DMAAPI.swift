/// The DMA-API state of one DMA or DMA-FQ default domain: `struct iommu_dma_cookie`
/// (`drivers/iommu/dma-iommu.c`) with its IOVA allocator and flush queue.
final class DMACookie {
    /// `cookie->iovad`.
    let iovad: IOVAAllocator
    /// Live mappings: aligned IOVA → aligned size, so a bad unmap is refused, not obeyed.
    var mappings: [IOVA: UInt64] = [:]
    /// `cookie->fq`: IOVAs unmapped but not yet covered by a flush-all, with the page-table
    /// pages their unmap freed (`fq_entry`: iova_pfn, pages, freelist).
    var flushQueue: [(iova: IOVA, size: UInt64, freelist: [PhysicalAddress])] = []

    init(iovad: IOVAAllocator) { self.iovad = iovad }
}

extension IOMMUSubsystem {
    /// `IOVA_FQ_SIZE`: entries a flush queue holds before it forces a flush-all.
    public static let defaultFlushQueueSize = 256

    /// The default domain the DMA API of `dev` maps into (`iommu_get_dma_domain`), with
    /// its cookie (`iommu_dma_init_domain` on first use: the allocator spans the aperture
    /// and reserves the device's reserved regions, `iova_reserve_iommu_regions`).
    private func dmaDomain(_ dev: PCIDevice) throws(Errno) -> (IOMMUDomain, DMACookie)? {
        guard let group = dev.group, let domain = group.defaultDomain else {
            throw .noDevice.from("iommu_get_dma_domain", "\(dev.rid) has no group or default domain")
        }
        if domain.type == .identity { return nil }
        guard domain.type.isDMAAPI, domain.pgsizeBitmap != 0 else {
            throw .invalidArgument.from("iommu_get_dma_domain", "the default domain \(domain) is not a DMA-API domain")
        }
        if let cookie = domain.dmaCookie { return (domain, cookie) }
        let granule = Self.minPageSize(domain)
        let iovad = IOVAAllocator(granule: granule, lowest: domain.geometry.apertureStart)
        for member in group.devices {
            for r in member.iommu?.driver.reservedRegions(member) ?? [] where r.length > 0 {
                iovad.reserve(first: r.start, last: r.start &+ (r.length - 1))
            }
        }
        let cookie = DMACookie(iovad: iovad)
        domain.dmaCookie = cookie
        return (domain, cookie)
    }

    /// `iommu_dma_map_page(dev, phys, size, dir, attrs)`: allocates an IOVA range from the
    /// default domain's allocator (`iommu_dma_alloc_iova`: below 4 GiB first, then the
    /// whole aperture), maps `[paddr, paddr + size)` there with `iommu_map` and returns
    /// the DMA address (the IOVA plus `paddr`'s offset in the granule). With an identity
    /// default domain the DMA address is `paddr` (dma-direct).
    /// - Throws: `EINVAL` for a zero or overflowing size, or a default domain that is not
    ///   a DMA-API domain; `ENODEV` without a group or default domain; `ENOMEM` when the
    ///   IOVA space is exhausted (`DMA_MAPPING_ERROR`); `iommu_map`'s errno (the IOVA is
    ///   then freed again). Nothing changes on error.
    public func dmaMapPage(_ dev: PCIDevice, paddr: PhysicalAddress, size: UInt64,
                           prot: IOMMUProt = [.read, .write]) throws(Errno) -> IOVA {
        try entry("iommu_dma_map_page") { () throws(Errno) -> IOVA in
            guard size != 0 else { throw .invalidArgument.from("iommu_dma_map_page", "size is 0") }
            guard !paddr.addingReportingOverflow(size).overflow else {
                throw .invalidArgument.from("iommu_dma_map_page", "paddr \(paddr) + size 0x\(String(size, radix: 16)) overflows")
            }
            guard let (domain, cookie) = try dmaDomain(dev) else { return IOVA(identity: paddr) }
            let granule = cookie.iovad.granule
            let offset = paddr.offset(within: granule)
            let (padded, o1) = (size + offset).addingReportingOverflow(granule - 1)
            guard !o1 else { throw .invalidArgument.from("iommu_dma_map_page", "size 0x\(String(size, radix: 16)) overflows") }
            let length = padded & ~(granule - 1)
            let base = paddr.alignedDown(to: granule)
            let limit = domain.geometry.apertureEnd
            let below4G = IOVA(rawValue: UInt64(UInt32.max))
            if limit > below4G, let low = cookie.iovad.alloc(size: length, limit: below4G) {
                return try finishMap(domain, cookie, iova: low, paddr: base, length: length, prot: prot) + offset
            }
            guard let iova = cookie.iovad.alloc(size: length, limit: limit) else {
                throw .noMemory.from("iommu_dma_alloc_iova", "no free IOVA range of 0x\(String(length, radix: 16)) bytes below \(limit)")
            }
            return try finishMap(domain, cookie, iova: iova, paddr: base, length: length, prot: prot) + offset
        }
    }

    private func finishMap(_ domain: IOMMUDomain, _ cookie: DMACookie, iova: IOVA, paddr: PhysicalAddress, length: UInt64,
                           prot: IOMMUProt) throws(Errno) -> IOVA {
        do { try map(domain, iova: iova, paddr: paddr, size: length, prot: prot) } catch {
            cookie.iovad.free(first: iova)
            throw error
        }
        cookie.mappings[iova] = length
        return iova
    }

    /// `iommu_dma_unmap_page(dev, dma_handle, size, dir, attrs)` (`__iommu_dma_unmap`):
    /// on a DMA (strict) domain, unmaps, waits for the IOTLB invalidation
    /// (`iommu_iotlb_sync`) and only then frees the IOVA. On a DMA-FQ domain, unmaps with
    /// `iommu_unmap_fast` and queues the IOVA and the freed page-table pages on the flush
    /// queue (`queue_iova`); they are released by the next flush-all
    /// (``dmaFlushQueue(_:)``, or automatically once the queue holds
    /// ``dmaFlushQueueSize`` entries), so an IOVA the IOTLB may still translate is never
    /// handed out again (check 35). With an identity default domain this does nothing.
    /// - Throws: `EINVAL` if (`dmaAddress`, `size`) is not a live mapping of the device's
    ///   default domain (the kernel WARNs); `ENODEV` without a group. Nothing changes on
    ///   error.
    public func dmaUnmapPage(_ dev: PCIDevice, dmaAddress: IOVA, size: UInt64) throws(Errno) {
        try entry("iommu_dma_unmap_page") { () throws(Errno) in
            guard size != 0 else { throw .invalidArgument.from("iommu_dma_unmap_page", "size is 0") }
            guard let (domain, cookie) = try dmaDomain(dev) else { return }
            let granule = cookie.iovad.granule
            let iova = dmaAddress.alignedDown(to: granule)
            let (padded, o1) = size.addingReportingOverflow(dmaAddress.offset(within: granule) + granule - 1)
            guard !o1, let length = cookie.mappings[iova], length == padded & ~(granule - 1) else {
                throw .invalidArgument.from("iommu_dma_unmap_page",
                                            "(\(dmaAddress), 0x\(String(size, radix: 16))) is not a live DMA mapping of \(dev.rid)")
            }
            cookie.mappings[iova] = nil
            var gather = IOTLBGather()
            gather.queued = domain.type == .dmaFQ
            let unmapped = unmapFast(domain, iova: iova, size: length, gather: &gather)
            if unmapped != length {
                warn("__iommu_dma_unmap", "unmapped 0x\(String(unmapped, radix: 16)) of 0x\(String(length, radix: 16)) bytes")
            }
            guard gather.queued else {
                iotlbSync(domain, gather: &gather)
                cookie.iovad.free(first: iova)
                return
            }
            cookie.flushQueue.append((iova, length, gather.freelist))
            if cookie.flushQueue.count >= dmaFlushQueueSize { flushQueueLocked(domain, cookie) }
        }
    }

    /// `fq_flush_iotlb` + `fq_ring_free` (the flush-queue timer or a full ring): one
    /// `flush_iotlb_all` on the default domain of `dev`, then the queued IOVAs and
    /// page-table pages are freed. A no-op for strict or identity domains.
    public func dmaFlushQueue(_ dev: PCIDevice) {
        lock.withLock {
            guard let group = dev.group, let domain = group.defaultDomain, let cookie = domain.dmaCookie else { return }
            flushQueueLocked(domain, cookie)
        }
    }

    private func flushQueueLocked(_ domain: IOMMUDomain, _ cookie: DMACookie) {
        guard !cookie.flushQueue.isEmpty else { return }
        flushIOTLBAll(domain)
        for entry in cookie.flushQueue {
            var gather = IOTLBGather()
            gather.freelist = entry.freelist
            gather.releaseFreelist(to: machine.memory)
            cookie.iovad.free(first: entry.iova)
        }
        cookie.flushQueue.removeAll()
    }

    /// IOVAs of `dev`'s default domain waiting on its flush queue (`fq` ring occupancy).
    public func dmaFlushQueueDepth(_ dev: PCIDevice) -> Int {
        lock.withLock { dev.group?.defaultDomain?.dmaCookie?.flushQueue.count ?? 0 }
    }
}
