import IOMMUCore

/// An SVA domain (`intel_svm_domain_alloc`): PASID entries point the first stage at a
/// process's CPU page table, with `FLPT_DEFAULT_DID` and no DID reference. An mm
/// notifier keeps the IOTLB and device TLBs coherent with the CPU table and disables
/// the entries (FPD, no drain) when the mm exits.
public final class VTdSVADomain: VTdDomain, @unchecked Sendable {
    let notifier: SVANotifier

    init(driver: IntelIOMMUDriver, mm: Process) throws(Errno) {
        notifier = SVANotifier()
        super.init(type: .sva, owner: driver, ops: [.setDevPasid])
        self.mm = mm
        notifier.domain = self
        guard mm.registerNotifier(notifier) else { throw .badAddress.from("intel_svm_domain_alloc", "the mm of pid \(mm.pid) takes no more notifiers (exiting)") }
    }

    override var usesDefaultDID: Bool { true }
    override var entryKind: VTdPGTT? { .firstStage }

    override func makeEntry(unit: IntelIOMMU, did: UInt16) -> VTdPASIDEntry {
        firstStageEntry(unit: unit, did: did, root: mm?.pgdPhysical ?? 0,
                        levels: mm?.pageTable.format.levels ?? 4)
    }

    /// `intel_svm_set_dev_pasid`: a first-stage entry on `mm->pgd`, DID 1.
    /// - Throws: `ENODEV` unknown device; the errno injected with the
    ///   `failSetDevPasid(_:on:)` test hook; `EOPNOTSUPP` unit without PASID; `EBUSY`
    ///   copied context or a present entry with no `old`; `ENOMEM`.
    public override func setDevPasid(_ dev: PCIDevice, pasid: PASID, old: IOMMUDomain?) throws(Errno) {
        try intelDriver.callback(.setDevPasid, self, dev, pasid: pasid, old: old) { () throws(Errno) in
            let info = try pasidPreconditions(dev)
            try install(info, pasid: pasid.rawValue, replacing: old as? VTdDomain)
        }
    }

    /// `intel_svm_domain_free`: unregisters the mm notifier (`mmu_notifier_put`).
    public override func free() { mm?.unregisterNotifier(notifier) }

    /// `intel_arch_invalidate_secondary_tlbs`: [start, end) → flush [start, end - 1].
    /// The range is the mm's virtual addresses, which are the domain's IOVAs.
    func invalidate(start: UInt64, end: UInt64) {
        guard end > start else { return }
        intelDriver.lock.withLock {
            if start == 0 && end == .max { flushRange(start: 0, end: .max, all: true) } else {
                flushRange(start: IOVA(rawValue: start), end: IOVA(rawValue: end - 1), all: false)
            }
        }
    }

    /// `intel_mm_release`: every PASID entry of the domain becomes FPD-only (faults
    /// suppressed, no PRQ drain); the attachments stay until unbind.
    func release() {
        intelDriver.lock.withLock {
            for a in attachments { a.info.unit.tearDown(a.info, pasid: a.pasid, faultIgnore: true) }
        }
    }
}

/// The `mmu_notifier` of an SVA domain (`intel_mmuops`).
final class SVANotifier: MMUNotifier, @unchecked Sendable {
    weak var domain: VTdSVADomain?
    func invalidateRange(_ process: Process, start: UInt64, end: UInt64) { domain?.invalidate(start: start, end: end) }
    func release(_ process: Process) { domain?.release() }
}
