import IOMMUCore

/// A toy paging domain (`struct iommu_domain` with its ops): a one-level page table of
/// 4 KiB PTEs in machine memory covering IOVAs [0, 256 MiB), and a domain ID. Attaching
/// points a context entry at the table; unmapping clears PTEs and invalidates the IOTLB
/// of every unit on `iotlb_sync`.
public final class ToyPagingDomain: IOMMUDomain, @unchecked Sendable {
    /// Physical address of the page table.
    public let table: PhysicalAddress
    /// The domain ID that tags this domain's translations.
    public let domainID: UInt16
    private let memory: PhysicalMemory
    private unowned let driver: ToyDriver

    init(driver: ToyDriver, memory: PhysicalMemory, domainID: UInt16) throws(Errno) {
        table = try memory.allocContiguous(bytes: ToyLayout.pageTableBytes)
        self.memory = memory
        self.driver = driver
        self.domainID = domainID
        var ops: DomainOps = [.attachDev, .mapPages, .unmapPages, .flushIOTLBAll, .iotlbSync, .iovaToPhys]
        if driver.pagingDomainsSetPasid { ops.insert(.setDevPasid) }
        super.init(type: .unmanaged, owner: driver, ops: ops, pgsizeBitmap: ToyLayout.pageSize,
                   geometry: DomainGeometry(apertureStart: 0, apertureEnd: IOVA(rawValue: ToyLayout.apertureSize - 1),
                                            forceAperture: true))
    }

    private var entry: ToyContextEntry { ToyContextEntry(.translate, tableRoot: table, domainID: domainID) }

    /// `attach_dev`: the device's RID entry now translates through this table.
    /// - Throws: `ENODEV` for a device not behind a toy unit.
    public override func attachDev(_ dev: PCIDevice, old: IOMMUDomain?) throws(Errno) {
        guard let unit = dev.iommu as? ToyIOMMU else { throw .noDevice }
        try unit.writeContext(entry, for: dev, pasid: nil)
    }

    /// `set_dev_pasid`: the PASID's entry now translates through this table.
    /// - Throws: `ENODEV` for a device not behind a toy unit; `EINVAL` for a device
    ///   without a PASID table or a PASID beyond it. The entry is unchanged on error.
    public override func setDevPasid(_ dev: PCIDevice, pasid: PASID, old: IOMMUDomain?) throws(Errno) {
        guard ops.contains(.setDevPasid) else { throw .notSupported }
        guard let unit = dev.iommu as? ToyIOMMU else { throw .noDevice }
        try unit.writeContext(entry, for: dev, pasid: pasid)
    }

    private func pteAddress(_ iova: IOVA) -> PhysicalAddress { table + (iova.rawValue / ToyLayout.pageSize) * 8 }

    /// `map_pages`: one PTE per page, `mapped` growing page by page so the core can undo
    /// a partial map.
    /// - Throws: `EINVAL` for a page size other than 4 KiB, a misaligned address or a
    ///   range beyond the table; `EEXIST` at a PTE already present (left as it was).
    public override func mapPages(iova: IOVA, paddr: PhysicalAddress, pgsize: UInt64, pgcount: Int, prot: IOMMUProt,
                                  mapped: inout UInt64) throws(Errno) {
        guard pgsize == ToyLayout.pageSize, pgcount > 0, iova.isAligned(to: pgsize), paddr.isAligned(to: pgsize)
        else { throw .invalidArgument }
        let (bytes, overflow) = UInt64(pgcount).multipliedReportingOverflow(by: pgsize)
        guard !overflow, iova.rawValue < ToyLayout.apertureSize, bytes <= ToyLayout.apertureSize - iova.rawValue
        else { throw .invalidArgument }
        for i in 0..<UInt64(pgcount) {
            let at = pteAddress(iova + i * pgsize)
            guard !ToyPTE(raw: memory.word(at: at)).isPresent else { throw .exists }
            memory.setWord(ToyPTE(address: paddr + i * pgsize, prot: prot).raw, at: at)
            mapped += pgsize
        }
    }

    /// `unmap_pages`: clears PTEs until the range is done or a hole is reached, and
    /// records the cleared range in `gather` for ``iotlbSync(_:)``.
    /// - Returns: the bytes unmapped (0 when `iova` itself is a hole).
    public override func unmapPages(iova: IOVA, pgsize: UInt64, pgcount: Int, gather: inout IOTLBGather) -> UInt64 {
        guard pgsize == ToyLayout.pageSize, pgcount > 0, iova.isAligned(to: pgsize) else { return 0 }
        var done: UInt64 = 0
        while done < UInt64(pgcount), iova.rawValue + done * pgsize < ToyLayout.apertureSize {
            let at = pteAddress(iova + done * pgsize)
            guard ToyPTE(raw: memory.word(at: at)).isPresent else { break }
            memory.setWord(0, at: at)
            done += 1
        }
        gather.addRange(iova: iova, size: done * pgsize)
        return done * pgsize
    }

    /// `iotlb_sync`: a range invalidation of the gathered IOVAs on every unit.
    public override func iotlbSync(_ gather: inout IOTLBGather) {
        guard !gather.isEmpty else { return }
        for unit in driver.allUnits {
            unit.invalidate(.invalidateRange(domainID: domainID, first: gather.start, last: gather.end))
        }
    }

    /// `flush_iotlb_all`: a domain invalidation on every unit.
    public override func flushIOTLBAll() {
        for unit in driver.allUnits { unit.invalidate(.invalidateDomain(domainID: domainID)) }
    }

    /// `iova_to_phys`: the PTE's address plus the offset, 0 when unmapped.
    public override func iovaToPhys(_ iova: IOVA) -> PhysicalAddress {
        guard iova.rawValue < ToyLayout.apertureSize else { return 0 }
        let pte = ToyPTE(raw: memory.word(at: pteAddress(iova)))
        return pte.isPresent ? pte.address + iova.offset(within: ToyLayout.pageSize) : 0
    }

    /// `free`: drops the domain's translations everywhere, frees the table and the ID.
    public override func free() {
        flushIOTLBAll()
        memory.free(table, bytes: ToyLayout.pageTableBytes)
        driver.freeDomainID(domainID)
    }
}

/// The toy's static blocked or identity domain: attaching writes a blocked or a
/// pass-through context entry.
final class ToyStaticDomain: IOMMUDomain, @unchecked Sendable {
    private let mode: ToyContextEntry.Mode

    init(_ type: DomainType, driver: ToyDriver, setsPasid: Bool) {
        mode = type == .identity ? .passThrough : .blocked
        super.init(type: type, owner: driver, ops: setsPasid ? [.attachDev, .setDevPasid] : [.attachDev])
    }

    /// `attach_dev`: a blocked or pass-through RID entry.
    override func attachDev(_ dev: PCIDevice, old: IOMMUDomain?) throws(Errno) {
        guard let unit = dev.iommu as? ToyIOMMU else { throw .noDevice }
        try unit.writeContext(ToyContextEntry(mode), for: dev, pasid: nil)
    }

    /// `set_dev_pasid`: for the blocked domain, how the core removes a PASID (the entry
    /// becomes invalid); for the identity domain, a pass-through PASID.
    override func setDevPasid(_ dev: PCIDevice, pasid: PASID, old: IOMMUDomain?) throws(Errno) {
        guard ops.contains(.setDevPasid) else { throw .notSupported }
        guard let unit = dev.iommu as? ToyIOMMU else { throw .noDevice }
        try unit.writeContext(mode == .blocked ? .invalid : ToyContextEntry(mode), for: dev, pasid: pasid)
    }
}
