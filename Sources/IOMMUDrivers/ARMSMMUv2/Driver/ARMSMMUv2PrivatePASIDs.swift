import IOMMUCore

/// The backdoor of the 2017 proposal (`struct smmuv2_pasid_ops`): a GPU driver registers
/// it with the SMMUv2 driver, which has no PASID tables of its own; when a private PASID
/// is allocated the SMMUv2 driver "installs" it by calling back into the GPU driver with
/// the table base and ASID, and the GPU switches to it itself.
public protocol SMMUv2PASIDOps: AnyObject, Sendable {
    /// `install_pasid(domain, pasid, ttbr, asid)`: the GPU driver records how to switch
    /// to the PASID's address space.
    /// - Throws: an errno that fails the allocation.
    func installPasid(_ domain: IOMMUDomain, pasid: PASID, ttbr: PhysicalAddress, asid: UInt16) throws(Errno)
    /// `remove_pasid(domain, pasid)`: the PASID's address space is going away.
    func removePasid(_ domain: IOMMUDomain, pasid: PASID)
}

/// The 2017 private-PASID API (`iommu_sva_alloc_pasid(domain, dev)`,
/// `iommu_sva_map(pasid, …)`, `iommu_sva_unmap(pasid, …)`, `iommu_sva_free_pasid(domain,
/// pasid)`), as it would have worked on SMMUv2: a private PASID is an io-pgtable with an
/// ASID of its own, on the context bank of the domain (walked through TTBR0 while the
/// domain's own table stays in TTBR1); "installing" it is the backdoor's
/// ``SMMUv2PASIDOps/installPasid(_:pasid:ttbr:asid:)``. The proposal was never merged;
/// mainline chose `adreno_smmu_priv` instead (see ``AdrenoSMMUPriv``).
///
/// Because every PASID has its own ASID and the context bank takes its ASID from TTBR0,
/// the domain's TTBR1 translations may be cached under any of them: while private
/// PASIDs exist, the domain's flushes invalidate the whole bank (TLBIALL).
public final class ARMSMMUv2PrivatePASIDs: @unchecked Sendable {
    private let lock = Lock()
    /// Serialises allocation and freeing whole (the registry's mutex): which PASID is a
    /// domain's first or last, and so enables or disables TTBR0, and which ASIDs are
    /// taken, must not change between the decision and the install.
    private let updateLock = Lock()
    private var opsByDomain: [ObjectIdentifier: any SMMUv2PASIDOps] = [:]
    private var entries: [PASID: Entry] = [:]
    private var nextPasid: UInt32 = 1

    private final class Entry: IOPgtableFlushOps, @unchecked Sendable {
        let domain: ARMSMMUv2Domain
        let asid: UInt16
        var pgtable: ARMLPAEPgtable!
        init(domain: ARMSMMUv2Domain, asid: UInt16) {
            self.domain = domain
            self.asid = asid
        }
        private func write(_ body: (SMMUv2Hardware, SMMUv2Page) -> Void) {
            guard let unit = domain.unit, let cb = domain.context?.contextBank else { return }
            unit.hardwareLock.withLock { body(unit.smmu, .contextBank(cb)) }
        }
        /// TLBIASID of the PASID's ASID, then TLBSYNC.
        func tlbFlushAll() {
            write { smmu, page in
                smmu.write32(page, SMMUv2Reg.tlbiASID, UInt32(asid))
                smmu.write32(page, SMMUv2Reg.tlbSync, 0)
            }
        }
        func tlbFlushWalk(iova: IOVA, size: UInt64, granule: UInt64) { tlbFlushAll() }
        /// TLBSYNC: wait for the TLBIVALs of an unmap.
        func sync() { write { smmu, page in smmu.write32(page, SMMUv2Reg.tlbSync, 0) } }
        /// TLBIVAL under the PASID's ASID.
        func tlbAddPage(iova: IOVA, granule: UInt64) {
            write { smmu, page in smmu.write64(page, SMMUv2Reg.tlbiVAL, ARMSMMUv2TLBOps.operand(iova, asid: asid)) }
        }
    }

    /// An empty registry.
    public init() {}

    /// The backdoor: `ops` is called to install and remove the private PASIDs of `domain`.
    /// - Throws: `EINVAL` for a domain that is not an arm-smmu paging domain; `EBUSY` if
    ///   ops are registered already.
    public func registerPasidOps(_ domain: IOMMUDomain, _ ops: any SMMUv2PASIDOps) throws(Errno) {
        guard domain is ARMSMMUv2Domain else { throw .invalidArgument }
        try lock.withLock { () throws(Errno) in
            guard opsByDomain[ObjectIdentifier(domain)] == nil else { throw .busy }
            opsByDomain[ObjectIdentifier(domain)] = ops
        }
    }

    /// `iommu_sva_alloc_pasid(domain, dev)`: a new private PASID of `domain`, with an
    /// io-pgtable shaped like the domain's TTBR0 range (the domain's table with the
    /// TTBR1 quirk cleared) and an ASID of its own; the first one enables TTBR0 walks on
    /// the context bank; the backdoor installs it.
    /// - Throws: `EINVAL` the domain is not attached with the TTBR1 split, or has no
    ///   ops registered; `ENOSPC` no PASID or ASID left; `ENOMEM`; the backdoor's errno.
    ///   Nothing stays allocated on error.
    public func allocPasid(_ domain: IOMMUDomain, dev: PCIDevice) throws(Errno) -> PASID {
        try updateLock.withLock { () throws(Errno) -> PASID in try allocPasidLocked(domain, dev: dev) }
    }

    private func allocPasidLocked(_ domain: IOMMUDomain, dev: PCIDevice) throws(Errno) -> PASID {
        guard let d = domain as? ARMSMMUv2Domain, let parent = d.ioPgtable?.cfg,
              parent.quirks.contains(.armTTBR1) else { throw .invalidArgument }
        guard let ops = lock.withLock({ opsByDomain[ObjectIdentifier(domain)] }) else { throw .invalidArgument }
        let (pasid, asid, first) = try lock.withLock { () throws(Errno) -> (PASID, UInt16, Bool) in
            let used = Set(entries.values.filter { $0.domain === d }.map(\.asid))
            guard let asid = (1...UInt16(255)).first(where: { !used.contains($0) && $0 != d.context?.asid }),
                  nextPasid < 1 << 20 else { throw .noSpace }
            defer { nextPasid += 1 }
            return (PASID(rawValue: nextPasid), asid, used.isEmpty)
        }
        let entry = Entry(domain: d, asid: asid)
        var cfg = parent
        cfg.quirks.remove(.armTTBR1)
        cfg.tlb = entry
        cfg.allocator = nil
        let machine = d.unit?.machine
        entry.pgtable = try ARMLPAEPgtable(cfg, memory: dev.machine?.memory ?? d.unit!.smmu.memory) { w in
            machine?.recordWarning(w)
        }
        do throws(Errno) {
            if first { try d.setTTBR0Table(entry.pgtable.cfg) }
            d.smmuDriver.lock.withLock { _ = d.privatePasidASIDs.insert(asid) }
            do throws(Errno) { try ops.installPasid(domain, pasid: pasid, ttbr: entry.pgtable.cfg.ttbr, asid: asid) } catch {
                d.smmuDriver.lock.withLock { _ = d.privatePasidASIDs.remove(asid) }
                if first { try? d.setTTBR0Table(nil) }
                throw error
            }
        } catch {
            entry.pgtable.free()
            throw error
        }
        lock.withLock { entries[pasid] = entry }
        return pasid
    }

    /// `iommu_sva_map(pasid, iova, paddr, size, prot)`: maps into the PASID's table with
    /// the largest page sizes the alignment allows (as `iommu_map`); all or nothing.
    /// - Throws: `ENOENT` unknown PASID; `EINVAL` misaligned; the table's `EINVAL`,
    ///   `ERANGE`, `EEXIST`, `ENOMEM`.
    public func map(pasid: PASID, iova: IOVA, paddr: PhysicalAddress, size: UInt64, prot: IOMMUProt) throws(Errno) {
        guard let e = lock.withLock({ entries[pasid] }) else { throw .noEntry }
        try e.pgtable.table.map(iova: iova, paddr: paddr, size: size, prot: prot, pageSizes: e.pgtable.cfg.pgsizeBitmap)
    }

    /// `iommu_sva_unmap(pasid, iova, size)`: unmaps and invalidates under the PASID's
    /// ASID (TLBIVAL per leaf, then TLBSYNC). Returns the bytes unmapped.
    /// - Throws: `ENOENT` unknown PASID.
    @discardableResult
    public func unmap(pasid: PASID, iova: IOVA, size: UInt64) throws(Errno) -> UInt64 {
        guard let e = lock.withLock({ entries[pasid] }) else { throw .noEntry }
        var unmapped: UInt64 = 0
        while unmapped < size {
            let (pgsize, count) = iommuPageSize(iova: iova + unmapped, paddr: PhysicalAddress(identity: iova + unmapped),
                                                size: size - unmapped, pageSizes: e.pgtable.cfg.pgsizeBitmap)
            var gather: IOTLBGather? = nil
            let n = e.pgtable.unmapPages(iova: iova + unmapped, pgsize: pgsize, pgcount: count, gather: &gather)
            if n == 0 { break }
            unmapped += n
        }
        if unmapped > 0 { e.sync() }
        return unmapped
    }

    /// `iommu_sva_free_pasid(domain, pasid)`: the backdoor removes it, its ASID is
    /// flushed, its table freed; the last one disables TTBR0 walks again.
    /// - Throws: `EINVAL` the PASID is not one of `domain`'s. Nothing changes.
    public func freePasid(_ domain: IOMMUDomain, pasid: PASID) throws(Errno) {
        try updateLock.withLock { () throws(Errno) in try freePasidLocked(domain, pasid: pasid) }
    }

    private func freePasidLocked(_ domain: IOMMUDomain, pasid: PASID) throws(Errno) {
        let e = try lock.withLock { () throws(Errno) -> Entry in
            guard let e = entries[pasid], e.domain === domain else { throw .invalidArgument }
            entries[pasid] = nil
            return e
        }
        let ops = lock.withLock { opsByDomain[ObjectIdentifier(domain)] }
        ops?.removePasid(domain, pasid: pasid)
        e.pgtable.free()
        let last = lock.withLock { !entries.values.contains { $0.domain === e.domain } }
        e.domain.smmuDriver.lock.withLock { _ = e.domain.privatePasidASIDs.remove(e.asid) }
        if last { try? e.domain.setTTBR0Table(nil) }
    }

    /// The table base and ASID of a private PASID, nil if unknown.
    public func table(of pasid: PASID) -> (ttbr: PhysicalAddress, asid: UInt16)? {
        lock.withLock { entries[pasid].map { ($0.pgtable.cfg.ttbr, $0.asid) } }
    }

    /// The private PASIDs allocated and not freed, ascending.
    public var pasids: [PASID] { lock.withLock { entries.keys.sorted() } }
}
