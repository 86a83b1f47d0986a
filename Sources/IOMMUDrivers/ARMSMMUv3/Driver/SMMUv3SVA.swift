import IOMMUCore

/// An SVA domain (`arm_smmu_sva_domain_alloc`, `arm-smmu-v3-sva.c`): CDs whose TTB0 is the
/// process's own arm64 page table (`mm->pgd`), tagged by a global ASID, kept coherent by
/// an mm notifier that invalidates by ASID, and turned into "fault everything" CDs (EPD0,
/// still valid) when the mm exits.
public final class SMMUv3SVADomain: SMMUv3Domain, @unchecked Sendable {
    let notifier: SMMUv3MMUNotifier

    /// `arm_smmu_sva_domain_alloc`: an ASID from the global allocator, then the mm notifier.
    /// Driver lock held.
    /// - Throws: `ENOSPC` when no ASID is free; `EFAULT` when the mm is exiting.
    init(driver: ArmSMMUv3Driver, unit: ArmSMMUv3, mm: Process) throws(Errno) {
        notifier = SMMUv3MMUNotifier()
        super.init(svaDriver: driver, unit: unit)
        self.mm = mm
        guard let a = driver.allocateASID(for: self, bits: unit.asidBits) else { throw .noSpace }
        asid = a
        notifier.domain = self
        guard mm.registerNotifier(notifier) else {
            driver.releaseASID(a)
            throw .badAddress
        }
    }

    /// The output size the CD gives the CPU's page table (`ID_AA64MMFR0_EL1.PARange`).
    static var cpuIPS: UInt64 { 5 }

    /// `arm_smmu_make_sva_cd` for this domain: the live form with the mm's pgd, or the
    /// released "fault everything" form.
    func makeSVACD(_ master: SMMUv3Master, released: Bool) -> SMMUv3CD {
        .sva(asid: asid, pgd: released ? nil : mm?.pgdPhysical, vaBits: SMMUv3Formats.cpuVABits, ips: Self.cpuIPS,
             mair: ArmSMMUv3.cpuMAIR, stallEnabled: master.stallEnabled, features: unit.features)
    }

    /// `arm_smmu_sva_set_dev_pasid`: CD `pasid` shares the mm's table (`arm_smmu_set_pasid`).
    /// - Throws: `EOPNOTSUPP` when the SMMU has no SVA; `EINVAL` when the mm is exiting
    ///   (`mmget_not_zero` fails), for another SMMU's device, or when the RID leaves no
    ///   room for PASIDs; `ENOMEM`; the errno injected with the
    ///   `failSetDevPasid(_:on:)` test hook.
    public override func setDevPasid(_ dev: PCIDevice, pasid: PASID, old: IOMMUDomain?) throws(Errno) {
        try smmuDriver.callback(.setDevPasid, self, dev, pasid: pasid, old: old) { () throws(Errno) in
            guard let master = dev.driverPrivate as? SMMUv3Master else { throw .noEntry }
            guard master.unit.features.contains(.sva) else { throw .notSupported }
            guard let mm, !mm.isExiting, master.unit === unit else { throw .invalidArgument }
            try setPasid(master, pasid: pasid.rawValue, cd: makeSVACD(master, released: false), old: old)
        }
    }

    /// `arm_smmu_sva_domain_free`: invalidates the ASID everywhere before it can be
    /// reused, returns it, then unregisters the notifier (`mmu_notifier_put`).
    public override func free() {
        smmuDriver.lock.withLock {
            if !smmuDriver.bugs.contains(.freeASIDWhileCDUsesIt) { invalidateAll() }
            if smmuDriver.asids[asid] == ObjectIdentifier(self) { smmuDriver.releaseASID(asid) }
        }
        mm?.unregisterNotifier(notifier)
    }

    /// `arm_smmu_mm_arch_invalidate_secondary_tlbs`: [`start`, `end`) of the mm changed;
    /// invalidate it by ASID on every target (a leaf-only hint for ranges below a 2 MiB
    /// block, since the mm never changes a table level there).
    func invalidate(start: UInt64, end: UInt64) {
        guard end > start else { return }
        smmuDriver.lock.withLock {
            let size = end - start
            if size >= UInt64.max / 2 { return invalidateAll() }
            invalidateRange(iova: IOVA(sva: start), size: size, granule: ArmSMMUv3.cpuPageSize, leafOnly: size < 1 << 21)
        }
    }

    /// `arm_smmu_mm_release`: DMA may still be running, so every CD of the domain stays
    /// valid but becomes the EPD0 "fault everything" form (a V=0 CD would flood the event
    /// queue with C_BAD_CD), then the whole domain is invalidated. The attachments stay
    /// until unbind.
    func release() {
        smmuDriver.lock.withLock {
            for md in devices {
                let master = md.master
                guard let pa = master.cdTable.cdAddress(md.ssid) else {
                    master.unit.warn(master.dev, "arm_smmu_mm_release", "no CD for ssid \(md.ssid)")
                    continue
                }
                master.writeCD(ssid: md.ssid, at: pa, makeSVACD(master, released: true))
            }
            invalidateAll()
        }
    }
}

/// The `mmu_notifier` of an SVA domain (`arm_smmu_mmu_notifier_ops`).
final class SMMUv3MMUNotifier: MMUNotifier, @unchecked Sendable {
    weak var domain: SMMUv3SVADomain?
    func invalidateRange(_ process: Process, start: UInt64, end: UInt64) { domain?.invalidate(start: start, end: end) }
    func release(_ process: Process) { domain?.release() }
}
