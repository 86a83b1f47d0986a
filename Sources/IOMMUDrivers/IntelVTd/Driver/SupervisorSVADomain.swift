import IOMMUCore

/// The pre-v6.4 supervisor SVA binding (`intel_svm_bind_mm` with
/// `SVM_FLAG_SUPERVISOR_MODE` on `init_mm`), kept as a variant: first-stage PASID entries
/// whose FLPTPTR is the kernel's CPU page table, with SRE (and WPE) set so privileged
/// requests walk supervisor pages, DID `FLPT_DEFAULT_DID`.
///
/// Unlike ``VTdSVADomain`` there is no mm notifier: the kernel address space has none, so
/// a kernel page-table change reaches the IOTLB only through an explicit flush
/// (``flushIOTLBAll()``, the "future API addition" the proposal's own comment mentioned).
/// That missing coherence is why the proposal was rejected; mainline (v6.4 on) attaches
/// idxd's DMA domain to a global PASID instead.
public final class VTdSupervisorSVADomain: VTdDomain, @unchecked Sendable {
    /// The kernel page table the entries point at (`init_mm.pgd`).
    public let kernelPageTable: IOPageTable

    init(driver: IntelIOMMUDriver, kernelPageTable: IOPageTable) {
        self.kernelPageTable = kernelPageTable
        super.init(type: .kernelSVA, owner: driver, ops: [.setDevPasid, .flushIOTLBAll, .iovaToPhys])
    }

    override var usesDefaultDID: Bool { true }
    override var entryKind: VTdPGTT? { .firstStage }

    override func makeEntry(unit: IntelIOMMU, did: UInt16) -> VTdPASIDEntry {
        var e = firstStageEntry(unit: unit, did: did, root: kernelPageTable.root,
                                levels: kernelPageTable.format.levels)
        // PASID_FLAG_SUPERVISOR_MODE: supervisor requests allowed, and (CR0.WP is set in
        // every kernel) supervisor writes honour read-only pages.
        e.sre = true
        e.wpe = true
        return e
    }

    /// `intel_svm_bind_mm` → `intel_pasid_setup_first_level(..., PASID_FLAG_SUPERVISOR_MODE)`.
    /// - Throws: `ENODEV` unknown device; the errno injected with the
    ///   `failSetDevPasid(_:on:)` test hook; `EOPNOTSUPP` unit without PASID; `EBUSY`
    ///   copied context or a present entry with no `old`; `ENOMEM`.
    public override func setDevPasid(_ dev: PCIDevice, pasid: PASID, old: IOMMUDomain?) throws(Errno) {
        try intelDriver.callback(.setDevPasid, self, dev, pasid: pasid, old: old) { () throws(Errno) in
            let info = try pasidPreconditions(dev)
            try install(info, pasid: pasid.rawValue, replacing: old as? VTdDomain)
        }
    }

    /// An explicit full flush of the PASIDs this domain serves (PASID-based IOTLB and
    /// device-TLB invalidations): what a kernel user would have had to call after every
    /// kernel page-table change, since `flush_tlb_kernel_range` never reaches the IOMMU.
    public override func flushIOTLBAll() {
        intelDriver.lock.withLock { flushRange(start: 0, end: .max, all: true) }
    }

    /// What the kernel page table maps `iova` (a kernel virtual address) to right now, 0
    /// when unmapped; the invariant checker compares served translations with it.
    public override func iovaToPhys(_ iova: IOVA) -> PhysicalAddress { kernelPageTable.iovaToPhys(iova) }
}

extension IntelIOMMUDriver: SupervisorSVADriver {
    /// The 2021 supervisor SVA variant (`SVM_FLAG_SUPERVISOR_MODE`): a domain on the
    /// kernel page table with SRE.
    /// - Throws: `ENODEV` device not behind this driver or unit not SVM capable;
    ///   `EOPNOTSUPP` unit without PASID; `EINVAL` a table that is not x86-64 format, or a
    ///   device without PASID Privileged Mode, PASID or ATS enabled.
    public func domainAllocSupervisorSVA(_ dev: PCIDevice, kernelPageTable: IOPageTable) throws(Errno) -> IOMMUDomain {
        guard let unit = dev.iommu as? IntelIOMMU, unit.intelDriver === self, unit.caps.svmCapable else { throw .noDevice.from("intel_iommu_domain_alloc_supervisor_sva", "\(dev.rid) is not behind an SVM-capable VT-d unit of this driver") }
        guard unit.caps.pasid else { throw .notSupported.from("intel_iommu_domain_alloc_supervisor_sva", "the unit has no PASID support") }
        guard kernelPageTable.format.kind == .x86_64FirstStage else { throw .invalidArgument.from("intel_iommu_domain_alloc_supervisor_sva", "the kernel page table is not an x86-64 first-stage table") }
        guard dev.caps.pasid?.privileged == true, dev.pasidEnabled, dev.atsEnabled else { throw .invalidArgument.from("intel_iommu_domain_alloc_supervisor_sva", "\(dev.rid) needs privileged PASIDs, PASID and ATS enabled") }
        return VTdSupervisorSVADomain(driver: self, kernelPageTable: kernelPageTable)
    }
}
