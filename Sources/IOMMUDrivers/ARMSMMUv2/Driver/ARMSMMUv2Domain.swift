import IOMMUCore

/// The context a paging domain holds on its unit once finalised (`struct arm_smmu_cfg`).
public struct ARMSMMUv2Context: Hashable, Sendable {
    /// `cbndx`: the context bank.
    public var contextBank: Int
    /// `asid`: the context's ASID (the bank's index, as arm-smmu allocates them).
    public var asid: UInt16
    /// `flush_walk_prefer_tlbiasid`: a walk flush invalidates the whole ASID rather than
    /// each granule of the range (Qualcomm sets it).
    public var flushWalkPreferTLBIASID: Bool
}

/// An arm-smmu paging domain (`struct arm_smmu_domain`): a stage-1 context on one
/// unit, made at the first attach (`arm_smmu_init_domain_context`): a context bank, an
/// ASID, an LPAE io-pgtable with the implementation's quirks (Qualcomm's GPU: the TTBR1
/// split), and the bank's registers.
///
/// The kernel finalises the domain only at its first attach (a map before returns
/// `ENODEV`; iommufd attaches arm-smmu domains before filling them). The model
/// finalises it at the first attach or the first map, whichever comes first, with the
/// device it was allocated for, so a caller that maps first sees the table it would
/// after the attach; ``setPgtableQuirks(_:)`` works until then, as in the kernel.
public final class ARMSMMUv2Domain: IOMMUDomain, @unchecked Sendable {
    let smmuDriver: ARMSMMUv2Driver
    /// The device the domain was allocated for (`domain_alloc_paging(dev)`).
    weak var allocatedFor: PCIDevice?
    // Guarded by the driver's lock.
    private(set) var finalisedUnit: ARMSMMUv2?
    private(set) var pgtable: ARMLPAEPgtable?
    private(set) var cfg = ARMSMMUv2Context(contextBank: 0, asid: 0, flushWalkPreferTLBIASID: false)
    var pgtblQuirks: IOPageTableQuirks = []
    /// The ASIDs the 2017 private-PASID backdoor gave contexts of this bank (``ARMSMMUv2PrivatePASIDs``):
    /// translations of the TTBR1 table may be cached under any of them.
    var privatePasidASIDs: Set<UInt16> = []
    /// The flush ops handed to the io-pgtable (`smmu_domain->flush_ops`).
    private(set) var flushOps: ARMSMMUv2TLBOps!
    /// Test hook: pages `map_pages` may still map before it fails with `ENOMEM`.
    private var mapBudget: Int?

    init(driver: ARMSMMUv2Driver, pgsizeBitmap: UInt64, allocatedFor dev: PCIDevice) {
        smmuDriver = driver
        allocatedFor = dev
        super.init(type: .unmanaged, owner: driver,
                   ops: [.attachDev, .mapPages, .unmapPages, .flushIOTLBAll, .iotlbSync, .iovaToPhys, .setPgtableQuirks],
                   pgsizeBitmap: pgsizeBitmap)
        flushOps = ARMSMMUv2TLBOps(domain: self)
    }

    /// Qualcomm's `init_context`: walk flushes invalidate the whole ASID. The caller
    /// holds the driver lock (it runs inside finalisation).
    public func preferTLBIASIDForWalks() { cfg.flushWalkPreferTLBIASID = true }

    /// The unit the domain's context lives on, nil until finalised (`smmu_domain->smmu`).
    public var unit: ARMSMMUv2? { smmuDriver.lock.withLock { finalisedUnit } }
    /// The context (bank, ASID), nil until finalised.
    public var context: ARMSMMUv2Context? { smmuDriver.lock.withLock { finalisedUnit == nil ? nil : cfg } }
    /// The io-pgtable, nil until finalised (`smmu_domain->pgtbl_ops`).
    public var ioPgtable: ARMLPAEPgtable? { smmuDriver.lock.withLock { pgtable } }

    // MARK: attach

    /// `arm_smmu_attach_dev`: finalise the domain on the device's unit if needed, then
    /// route every stream of the device to the context bank (S2CR type translate).
    /// - Throws: `ENODEV` for a device the driver did not probe; `EINVAL` when the domain
    ///   lives on another unit; what finalising throws (`ENOSPC` no context bank,
    ///   `EINVAL`, `ENOMEM`).
    public override func attachDev(_ dev: PCIDevice, old: IOMMUDomain?) throws(Errno) {
        try smmuDriver.recordAttach(self, dev, old: old) { () throws(Errno) in
            guard let master = dev.driverPrivate as? ARMSMMUv2Master else { throw .noDevice }
            try finalise(on: master.unit, dev: dev)
            guard finalisedUnit === master.unit else { throw .invalidArgument }
            master.unit.installS2CRs(master, type: SMMUv2Field.s2crTypeTranslate, cbndx: UInt8(cfg.contextBank))
        }
    }

    /// `arm_smmu_set_pgtable_quirks`: quirks for the table made at finalisation.
    /// - Throws: `EPERM` once the domain is finalised.
    public override func setPgtableQuirks(_ quirks: IOPageTableQuirks) throws(Errno) {
        try smmuDriver.lock.withLock { () throws(Errno) in
            guard finalisedUnit == nil else { throw .notPermitted }
            pgtblQuirks = quirks
        }
    }

    // MARK: map / unmap

    /// The io-pgtable, finalising on the allocating device's unit first if needed.
    private func tableForMapping() throws(Errno) -> ARMLPAEPgtable {
        try smmuDriver.lock.withLock { () throws(Errno) -> ARMLPAEPgtable in
            if pgtable == nil, let dev = allocatedFor, let master = dev.driverPrivate as? ARMSMMUv2Master {
                try finalise(on: master.unit, dev: dev)
            }
            guard let pgtable else { throw .noDevice }
            return pgtable
        }
    }

    /// `arm_smmu_map_pages`: `map_pages` of the io-pgtable.
    /// - Throws: `ENODEV` when the domain cannot be finalised; the table's `EINVAL`,
    ///   `ERANGE`, `EEXIST`, `ENOMEM`; `ENOMEM` from the `failMapAfterPages` test hook.
    public override func mapPages(iova: IOVA, paddr: PhysicalAddress, pgsize: UInt64, pgcount: Int, prot: IOMMUProt,
                                  mapped: inout UInt64) throws(Errno) {
        let table = try tableForMapping()
        let allowed = smmuDriver.lock.withLock { () -> Int in
            guard let left = mapBudget else { return pgcount }
            let n = min(left, pgcount)
            mapBudget = left - n
            return n
        }
        if allowed > 0 {
            try table.mapPages(iova: iova, paddr: paddr, pgsize: pgsize, pgcount: allowed, prot: prot, mapped: &mapped)
        }
        if allowed < pgcount { throw .noMemory }
    }

    /// Test hook: `map_pages` fails with `ENOMEM` once `failMapAfterPages` more pages are
    /// mapped (pages of the size each call maps); nil stops it.
    package var failMapAfterPages: Int? {
        get { smmuDriver.lock.withLock { mapBudget } }
        set { smmuDriver.lock.withLock { mapBudget = newValue } }
    }

    /// `arm_smmu_unmap_pages`: `unmap_pages` of the io-pgtable, which invalidates each
    /// removed leaf (TLBIVAL) and, if table pages go, the walk (TLBIASID or TLBIVA).
    public override func unmapPages(iova: IOVA, pgsize: UInt64, pgcount: Int, gather: inout IOTLBGather) -> UInt64 {
        guard let table = smmuDriver.lock.withLock({ pgtable }) else { return 0 }
        var g: IOTLBGather? = gather
        let n = table.unmapPages(iova: iova, pgsize: pgsize, pgcount: pgcount, gather: &g)
        gather = g ?? gather
        return n
    }

    /// `arm_smmu_flush_iotlb_all`: the flush ops' `tlb_flush_all` (TLBIASID and sync).
    public override func flushIOTLBAll() {
        guard smmuDriver.lock.withLock({ finalisedUnit }) != nil else { return }
        flushOps.tlbFlushAll()
    }

    /// `arm_smmu_iotlb_sync`: the context's TLBSYNC (the invalidations were issued while
    /// unmapping).
    public override func iotlbSync(_ gather: inout IOTLBGather) {
        guard let (unit, cb) = smmuDriver.lock.withLock({ finalisedUnit.map { ($0, cfg.contextBank) } }) else { return }
        unit.hardwareLock.withLock { unit.smmu.write32(.contextBank(cb), SMMUv2Reg.tlbSync, 0) }
    }

    /// `arm_smmu_iova_to_phys`: with address translation operations, the hardware's
    /// (`arm_smmu_iova_to_phys_hard`: ATS1PR, then PAR): what the context bank
    /// translates now, through TTBR0 below and TTBR1 above; otherwise the io-pgtable's
    /// software walk. 0 where nothing is mapped.
    ///
    /// The model's operation audits the walk: if it would read a page-table page that
    /// is no longer allocated (a table freed while the context still points at it), the
    /// invariant checker is told.
    public override func iovaToPhys(_ iova: IOVA) -> PhysicalAddress {
        guard let (unit, table, cb) = smmuDriver.lock.withLock({ () -> (ARMSMMUv2, ARMLPAEPgtable, Int)? in
            guard let u = finalisedUnit, let t = pgtable else { return nil }
            return (u, t, cfg.contextBank)
        }) else { return 0 }
        guard unit.features.contains(.translationOps) else { return table.iovaToPhys(iova) }
        let par = unit.hardwareLock.withLock { () -> UInt64 in
            unit.smmu.write64(.contextBank(cb), SMMUv2Reg.ats1PR, iova.alignedDown(to: 4096).rawValue)
            return unit.smmu.read64(.contextBank(cb), SMMUv2Reg.par)
        }
        if par & SMMUv2Field.parF != 0 {
            if par & UInt64(SMMUv2Field.fsrEF) != 0 { reportFreedTableWalk(unit, cb, iova) }
            return 0
        }
        return PhysicalAddress(rawValue: (par & 0xFF_FFFF_F000) | iova.offset(within: 4096))
    }

    private func reportFreedTableWalk(_ unit: ARMSMMUv2, _ cb: Int, _ iova: IOVA) {
        guard let machine = unit.machine else { return }
        let ttbr0 = unit.hardwareLock.withLock { unit.smmu.read64(.contextBank(cb), SMMUv2Reg.ttbr0) }
        machine.checker.report(Violation(
            .coherenceAfterUnmap, device: allocatedFor?.rid, address: iova, event: "context bank \(cb) walk",
            message: "the walk reads a page-table page that was freed while context bank \(cb) still uses it "
                + "(TTBR0 0x\(String(ttbr0 & SMMUv2Field.ttbrAddressMask, radix: 16)))"))
    }

    /// `arm_smmu_domain_free`: `arm_smmu_destroy_domain_context`: disable the context
    /// bank, release its interrupt, free the io-pgtable (which flushes the ASID first)
    /// and the bank.
    public override func free() {
        smmuDriver.lock.withLock {
            guard let unit = finalisedUnit else { return }
            let cb = cfg.contextBank
            unit.cbs[cb] = ContextBankSoftware()
            unit.hardwareLock.withLock { unit.writeContextBank(cb) }
            unit.contextIRQ[cb] = nil
            pgtable?.free()
            pgtable = nil
            unit.contextMap[cb] = false
            finalisedUnit = nil
        }
    }

    // MARK: finalise

    /// `arm_smmu_init_domain_context`: on the first call, choose a stage-1 AArch64
    /// context, allocate a context bank (the implementation's choice: Qualcomm gives the
    /// GPU bank 0), take the bank's index as ASID, let the implementation adjust the
    /// io-pgtable configuration, allocate the table, set the geometry (the upper,
    /// sign-extended range with the TTBR1 quirk), program the bank and install its
    /// fault handler. Later calls do nothing. The caller holds the driver lock.
    /// - Throws: `ENOSPC` no free context bank; `EINVAL` a configuration the table
    ///   refuses; `ENOMEM`. Nothing stays allocated on error.
    func finalise(on unit: ARMSMMUv2, dev: PCIDevice) throws(Errno) {
        guard finalisedUnit == nil else { return }
        let start = 0   // num_s2_context_banks: the model has no stage-2-only banks
        let cb: Int
        if let impl = unit.impl {
            cb = try impl.allocContextBank(self, on: unit, dev: dev, start: start)
        } else {
            cb = try unit.allocContextBank(from: start, count: unit.numContextBanks - start)
        }
        cfg = ARMSMMUv2Context(contextBank: cb, asid: UInt16(cb), flushWalkPreferTLBIASID: false)
        finalisedUnit = unit
        var pcfg = IOPgtableCfg(pgsizeBitmap: unit.pgsizeBitmap, ias: unit.vaSize, oas: unit.ipaSize,
                                coherentWalk: unit.features.contains(.coherentWalk), tlb: flushOps)
        do throws(Errno) {
            try unit.impl?.initContext(self, cfg: &pcfg, dev: dev)
            pcfg.quirks.formUnion(pgtblQuirks)
            let machine = unit.machine
            let table = try ARMLPAEPgtable(pcfg, memory: unit.smmu.memory) { w in machine?.recordWarning(w) }
            pgtable = table
            pgsizeBitmap = table.cfg.pgsizeBitmap
            let ias = UInt64(table.cfg.ias)
            geometry = table.cfg.quirks.contains(.armTTBR1)
                ? DomainGeometry(apertureStart: IOVA(rawValue: ~UInt64(0) << ias), apertureEnd: .max, forceAperture: true)
                : DomainGeometry(apertureStart: 0, apertureEnd: IOVA(rawValue: (1 << ias) - 1), forceAperture: true)
            unit.initContextBank(cb, domain: self, cfg: table.cfg)
            unit.hardwareLock.withLock { unit.writeContextBank(cb) }
            unit.contextIRQ[cb] = self
        } catch {
            unit.contextMap[cb] = false
            finalisedUnit = nil
            throw error
        }
    }
}

/// The stage-1 flush ops of an arm-smmu domain (`arm_smmu_s1_tlb_ops`).
final class ARMSMMUv2TLBOps: IOPgtableFlushOps, @unchecked Sendable {
    unowned let domain: ARMSMMUv2Domain

    init(domain: ARMSMMUv2Domain) { self.domain = domain }

    private func withContext(_ body: (ARMSMMUv2, ARMSMMUv2Context, Set<UInt16>) -> Void) {
        guard let (unit, cfg, asids) = domain.smmuDriver.lock.withLock({ () -> (ARMSMMUv2, ARMSMMUv2Context, Set<UInt16>)? in
            guard let u = domain.finalisedUnit else { return nil }
            return (u, domain.cfg, domain.privatePasidASIDs)
        }) else { return }
        unit.hardwareLock.withLock { body(unit, cfg, asids) }
    }

    /// `arm_smmu_tlb_inv_context_s1`: TLBIASID of the context's ASID, then TLBSYNC. With
    /// private PASIDs (the 2017 variant) translations may sit under their ASIDs too, so
    /// the whole bank is invalidated (TLBIALL).
    func tlbFlushAll() {
        withContext { unit, cfg, asids in
            let page = SMMUv2Page.contextBank(cfg.contextBank)
            if asids.isEmpty {
                unit.smmu.write32(page, SMMUv2Reg.tlbiASID, UInt32(cfg.asid))
            } else {
                unit.smmu.write32(page, SMMUv2Reg.tlbiAll, 0)
            }
            unit.smmu.write32(page, SMMUv2Reg.tlbSync, 0)
        }
    }

    /// `arm_smmu_tlb_inv_walk_s1`: with `flush_walk_prefer_tlbiasid`, the whole ASID;
    /// otherwise TLBIVA for every granule of the range; then TLBSYNC.
    func tlbFlushWalk(iova: IOVA, size: UInt64, granule: UInt64) {
        if domain.smmuDriver.lock.withLock({ domain.cfg.flushWalkPreferTLBIASID }) {
            tlbFlushAll()
            return
        }
        withContext { unit, cfg, _ in
            let page = SMMUv2Page.contextBank(cfg.contextBank)
            var done: UInt64 = 0
            while done < size {
                unit.smmu.write64(page, SMMUv2Reg.tlbiVA, Self.operand(iova &+ done, asid: cfg.asid))
                done &+= granule
            }
            unit.smmu.write32(page, SMMUv2Reg.tlbSync, 0)
        }
    }

    /// `arm_smmu_tlb_add_page_s1`: TLBIVAL of the leaf (synced by `iotlb_sync`).
    func tlbAddPage(iova: IOVA, granule: UInt64) {
        withContext { unit, cfg, _ in
            unit.smmu.write64(.contextBank(cfg.contextBank), SMMUv2Reg.tlbiVAL, Self.operand(iova, asid: cfg.asid))
        }
    }

    /// A TLBIVA(L) operand: VA[55:12] in bits 43:0, the ASID in bits 63:48.
    static func operand(_ va: IOVA, asid: UInt16) -> UInt64 {
        (va.rawValue >> 12) & 0xFFF_FFFF_FFFF | UInt64(asid) << 48
    }
}
