import IOMMUCore
import Synchronization

/// An SMMUv3 domain (`struct arm_smmu_domain`): a stage-1 or stage-2 paging domain with
/// its LPAE page table, or an SVA domain (``SMMUv3SVADomain``) sharing a process's
/// table; its ASID (stage 1, SVA) or VMID (stage 2), the masters it is attached to
/// (`devices`) and its invalidation array (`invs`).
public class SMMUv3Domain: IOMMUDomain, @unchecked Sendable {
    /// `enum arm_smmu_domain_stage`.
    public enum Stage: Hashable, Sendable, CustomStringConvertible {
        /// `ARM_SMMU_DOMAIN_S1`: a CD on an LPAE stage-1 table, tagged by an ASID.
        case s1
        /// `ARM_SMMU_DOMAIN_S2`: an STE on an LPAE stage-2 table, tagged by a VMID.
        case s2
        /// `ARM_SMMU_DOMAIN_SVA`: a CD on a process's own page table.
        case sva
        /// `s1`, `s2`, `sva`.
        public var description: String {
            switch self {
            case .s1: "s1"
            case .s2: "s2"
            case .sva: "sva"
            }
        }
    }

    /// The stage.
    public let stage: Stage
    /// `smmu_domain->smmu`: the SMMU the domain was finalised for. `unowned(unsafe)`: a
    /// machine never removes a unit.
    public unowned(unsafe) let unit: ArmSMMUv3
    /// `cd.asid` (stage 1 and SVA; 0 for stage 2).
    public internal(set) var asid: UInt16 = 0
    /// `s2_cfg.vmid` (stage 2; 0 otherwise).
    public internal(set) var vmid: UInt16 = 0
    /// The page table (nil for SVA).
    public let pageTable: IOPageTable?
    /// The stage-1 CD fields of the table (stage 1).
    let tcr: SMMUv3TCR
    /// The MAIR of the table (stage 1).
    let mair: UInt64
    /// The stage-2 translation control of the table (stage 2).
    let vtcr: SMMUv3STE.VTCR
    /// `nest_parent`: allocated with `IOMMU_HWPT_ALLOC_NEST_PARENT`.
    public let nestParent: Bool
    /// `tgsz_lg2`: log2 of the smallest page, the granule of range invalidations.
    let granuleShift: Int
    /// Allocated with dirty tracking (HA/HD in its CDs).
    let dirtyTracking: Bool
    /// `invs`: the invalidation targets.
    public internal(set) var invs = SMMUv3Invs()
    /// `devices`: where the domain is attached.
    var devices: [SMMUv3MasterDomain] = []
    /// `nr_ats_masters`.
    var atsMasters = 0
    /// Test hook state (``failMapAfterPages``): pages `map_pages` may still map before it
    /// fails, -1 when off. Atomic so that the map path checks it with one relaxed load.
    private let mapBudget = MapPageBudget()

    /// The driver that owns the domain (always an ``ArmSMMUv3Driver``).
    var smmuDriver: ArmSMMUv3Driver { unsafeDowncast(owner, to: ArmSMMUv3Driver.self) }

    /// `arm_smmu_domain_finalise`: the page table of the stage (stage 1: the SMMU's input
    /// size capped to the CPU's 48-bit VA; stage 2: its output size on both sides), then
    /// an ASID or a VMID. Driver lock held.
    /// - Throws: `ENOSPC` when no ASID or VMID is free; `ENOMEM`.
    init(driver: ArmSMMUv3Driver, unit: ArmSMMUv3, stage: Stage, nestParent: Bool, dirtyTracking: Bool) throws(Errno) {
        precondition(stage != .sva)
        self.stage = stage
        self.unit = unit
        self.nestParent = nestParent
        self.dirtyTracking = dirtyTracking
        let coherent = unit.features.contains(.coherency)
        let ias = stage == .s1 ? min(unit.features.contains(.vax) ? 52 : 48, 48) : unit.outputAddressBits
        let table: SMMUv3Formats.Table
        if stage == .s1 {
            table = try SMMUv3Formats.stage1(ias: ias, oas: unit.outputAddressBits, pageSizes: unit.pageSizes,
                                             coherent: coherent, dirtyTracking: dirtyTracking, memory: unit.smmu.memory,
                                             warn: { [unowned unit] w in unit.warn(nil, w.function, w.message) })
        } else {
            table = try SMMUv3Formats.stage2(ias: ias, oas: unit.outputAddressBits, pageSizes: unit.pageSizes,
                                             coherent: coherent,
                                             forcedWriteBack: nestParent && unit.features.contains(.s2fwb),
                                             memory: unit.smmu.memory,
                                             warn: { [unowned unit] w in unit.warn(nil, w.function, w.message) })
        }
        pageTable = table.pageTable
        tcr = table.tcr
        mair = table.mair
        vtcr = table.vtcr
        let sizes = table.pageTable.format.pageSizes & unit.pageSizes
        granuleShift = sizes.trailingZeroBitCount
        var ops = driver.pagingOps
        if dirtyTracking { ops.insert(.dirtyTracking) }
        super.init(type: .unmanaged, owner: driver, ops: ops, pgsizeBitmap: sizes,
                   geometry: DomainGeometry(apertureStart: 0, apertureEnd: IOVA(rawValue: (UInt64(1) << UInt64(ias)) - 1),
                                            forceAperture: true))
        if stage == .s1 {
            guard let a = driver.allocateASID(for: self, bits: unit.asidBits) else {
                table.pageTable.destroy()
                throw .noSpace
            }
            asid = a
        } else {
            guard let v = unit.allocateVMID() else {
                table.pageTable.destroy()
                throw .noSpace
            }
            vmid = v
        }
    }

    /// The SVA domain's initialiser: no page table, an ASID set by the subclass.
    init(svaDriver driver: ArmSMMUv3Driver, unit: ArmSMMUv3) {
        stage = .sva
        self.unit = unit
        nestParent = false
        dirtyTracking = false
        pageTable = nil
        tcr = SMMUv3TCR(t0sz: 0, tg: 0, irgn: 0, orgn: 0, sh: 0, ips: 0)
        mair = 0
        vtcr = SMMUv3STE.VTCR(rawValue: 0)
        granuleShift = 12
        super.init(type: .sva, owner: driver, ops: [.setDevPasid], pgsizeBitmap: ArmSMMUv3.cpuPageSize)
    }

    /// `arm_smmu_make_s1_cd` for this domain and `master`.
    func makeS1CD(_ master: SMMUv3Master) -> SMMUv3CD {
        SMMUv3CD.stage1(asid: asid, tcr: tcr, ttbr: pageTable?.root ?? 0, mair: mair, stallEnabled: master.stallEnabled,
                        dirtyTracking: dirtyTracking)
    }

    /// `arm_smmu_make_s2_domain_ste` for this domain and `master`.
    func makeS2STE(_ master: SMMUv3Master, ats: Bool) -> SMMUv3STE {
        SMMUv3STE.stage2(vmid: vmid, vtcr: vtcr, tableBase: pageTable?.root ?? 0, ats: ats,
                         stallEnabled: master.stallEnabled,
                         forcedWriteBack: nestParent && unit.features.contains(.s2fwb), features: unit.features)
    }

    // MARK: attach

    /// `arm_smmu_attach_dev`: stage 1 writes CD 0 and a CD-table STE with S1DSS=SSID0;
    /// stage 2 installs an S2 STE and clears CD 0. Both go through the attach sequence
    /// (invalidation arrays, ATS).
    /// - Throws: `ENOENT` for a device the driver did not probe; `EINVAL` for a device of
    ///   another SMMU or an SVA domain; `EBUSY` for stage 2 while PASIDs are in use;
    ///   `ENOMEM`; the iopf queue's errno.
    public override func attachDev(_ dev: PCIDevice, old: IOMMUDomain?) throws(Errno) {
        try smmuDriver.callback(.attachDev, self, dev, old: old) { () throws(Errno) in
            guard let master = dev.driverPrivate as? SMMUv3Master else { throw .noEntry }
            guard master.unit === unit, stage != .sva else { throw .invalidArgument }
            var cdAddress: PhysicalAddress = 0
            if stage == .s1 {
                cdAddress = try master.allocCD(ssid: 0)
            } else if master.cdTable.usedSSIDs > 0 {
                throw .busy
            }
            var state = SMMUv3AttachState(master: master, oldDomain: old, ssid: 0)
            try prepareAttach(&state, newDomain: self)
            if stage == .s1 {
                master.writeCD(ssid: 0, at: cdAddress, makeS1CD(master))
                installSTE(master, .cdTable(master.cdTable.config, s1dss: .ssid0, ats: state.atsEnabled,
                                            stallEnabled: master.stallEnabled, features: unit.features))
            } else {
                installSTE(master, makeS2STE(master, ats: state.atsEnabled))
                master.clearCD(ssid: 0)
            }
            commitAttach(&state)
        }
    }

    /// `arm_smmu_s1_set_dev_pasid`: CD `pasid` for this stage-1 domain (`arm_smmu_set_pasid`).
    /// - Throws: `EOPNOTSUPP` for a domain of a driver built without it; `EINVAL` for
    ///   another SMMU's device, a stage-2 domain, or a RID that is neither on a CD-table
    ///   STE nor on an identity or blocking domain; `ENOMEM`; the errno injected with the
    ///   `failSetDevPasid(_:on:)` test hook.
    public override func setDevPasid(_ dev: PCIDevice, pasid: PASID, old: IOMMUDomain?) throws(Errno) {
        guard ops.contains(.setDevPasid) else { throw .notSupported }
        try smmuDriver.callback(.setDevPasid, self, dev, pasid: pasid, old: old) { () throws(Errno) in
            guard let master = dev.driverPrivate as? SMMUv3Master else { throw .noEntry }
            guard master.unit === unit, stage == .s1 else { throw .invalidArgument }
            try setPasid(master, pasid: pasid.rawValue, cd: makeS1CD(master), old: old)
        }
    }

    // MARK: map and unmap

    /// `arm_smmu_map_pages`: the LPAE table's `map_pages`.
    /// - Throws: `ENODEV` without a table (SVA); the table's `EINVAL`, `ERANGE`,
    ///   `EEXIST`, `ENOMEM`; `ENOMEM` from the `failMapAfterPages` test hook.
    public override func mapPages(iova: IOVA, paddr: PhysicalAddress, pgsize: UInt64, pgcount: Int, prot: IOMMUProt,
                                  mapped: inout UInt64) throws(Errno) {
        guard let pageTable else { throw .noDevice }
        var count = pgcount
        if mapBudget.isArmed { count = mapBudget.take(pgcount) }
        if count > 0 {
            try pageTable.mapPages(iova: iova, paddr: paddr, pgsize: pgsize, pgcount: count, prot: prot, mapped: &mapped)
        }
        if count < pgcount { throw .noMemory }
    }

    /// Test hook (no kernel counterpart; the kernel injects faults with
    /// `iommufd_should_fail()`): once this many more pages (of the size each call maps)
    /// are mapped, `map_pages` maps no more and fails with `ENOMEM`; nil (the default)
    /// never fails. The map path pays one relaxed atomic load for it.
    package var failMapAfterPages: Int? {
        get { mapBudget.pages }
        set { mapBudget.set(newValue) }
    }

    /// `arm_smmu_unmap_pages`: the LPAE table's `unmap_pages`, recording the range and its
    /// leaf size in `gather`.
    public override func unmapPages(iova: IOVA, pgsize: UInt64, pgcount: Int, gather: inout IOTLBGather) -> UInt64 {
        pageTable?.unmapPages(iova: iova, pgsize: pgsize, pgcount: pgcount, gather: &gather) ?? 0
    }

    /// `arm_smmu_iotlb_sync`: a leaf-only invalidation of the gathered range at its leaf
    /// size through the domain's invalidation array (`arm_smmu_domain_tlbi`).
    public override func iotlbSync(_ gather: inout IOTLBGather) {
        guard gather.pgsize != 0, !gather.isEmpty else { return }
        smmuDriver.lock.withLock {
            invalidateRange(iova: gather.start, size: gather.start.distance(to: gather.end) + 1, granule: gather.pgsize, leafOnly: true)
        }
    }

    /// `arm_smmu_flush_iotlb_all`: the whole domain (`arm_smmu_domain_inv`).
    public override func flushIOTLBAll() { smmuDriver.lock.withLock { invalidateAll() } }

    /// `arm_smmu_iova_to_phys`.
    public override func iovaToPhys(_ iova: IOVA) -> PhysicalAddress { pageTable?.iovaToPhys(iova) ?? 0 }

    /// `arm_smmu_set_dirty_tracking`: always on for a dirty-tracking domain (HA/HD are set
    /// in its CDs); nothing to do.
    /// - Throws: `EINVAL` for a domain allocated without dirty tracking.
    public override func setDirtyTracking(_ enabled: Bool) throws(Errno) {
        guard dirtyTracking else { throw .invalidArgument }
    }

    /// `arm_smmu_read_and_clear_dirty`: the table's dirty leaves. After clearing, the
    /// cleaned range is invalidated by ASID (the `iommu_iotlb_sync` of the dirty bitmap's
    /// gather), so a cached writable translation cannot hide the next write.
    /// - Throws: `EINVAL` for a domain allocated without dirty tracking.
    public override func readAndClearDirty(iova: IOVA, size: UInt64, clear: Bool,
                                           _ report: (IOVA, UInt64) -> Void) throws(Errno) {
        guard dirtyTracking, let pageTable else { throw .invalidArgument }
        var start = UInt64.max, end: UInt64 = 0
        pageTable.readAndClearDirty(iova: iova, size: size, clear: clear) { a, length in
            start = min(start, a.rawValue)
            end = max(end, a.rawValue &+ length)
            report(a, length)
        }
        guard clear, end > start else { return }
        smmuDriver.lock.withLock {
            invalidateRange(iova: IOVA(rawValue: start), size: end - start, granule: 1 << UInt64(granuleShift), leafOnly: true)
        }
    }

    /// `arm_smmu_domain_free_paging`: frees the table, then returns the ASID (stage 1) or
    /// the VMID (stage 2). The last detach already flushed the TLB of that tag.
    public override func free() {
        smmuDriver.lock.withLock {
            pageTable?.destroy()
            if stage == .s1 {
                if smmuDriver.asids[asid] == ObjectIdentifier(self) { smmuDriver.releaseASID(asid) }
            } else if vmid != 0 {
                unit.releaseVMID(vmid)
            }
        }
    }
}

/// One place a domain is attached (`struct arm_smmu_master_domain`): a master, the
/// iommu_domain attached (the domain itself, or a nested domain on it), the SubstreamID,
/// and whether it uses the iopf queue.
final class SMMUv3MasterDomain {
    unowned let master: SMMUv3Master
    unowned let domain: IOMMUDomain
    let ssid: UInt32
    let nestedATSFlush: Bool
    var usingIOPF = false

    init(master: SMMUv3Master, domain: IOMMUDomain, ssid: UInt32, nestedATSFlush: Bool) {
        self.master = master
        self.domain = domain
        self.ssid = ssid
        self.nestedATSFlush = nestedATSFlush
    }
}

/// The driver's static blocking domain (`arm_smmu_blocked_domain`).
public final class SMMUv3BlockedDomain: IOMMUDomain, @unchecked Sendable {
    unowned let smmuDriver: ArmSMMUv3Driver

    /// The blocking domain; without `set_dev_pasid` when `setsPasid` is false (a driver
    /// variant built for the conformance suite).
    init(driver: ArmSMMUv3Driver, setsPasid: Bool) {
        smmuDriver = driver
        super.init(type: .blocked, owner: driver, ops: setsPasid ? [.attachDev, .setDevPasid] : [.attachDev])
    }

    /// `arm_smmu_attach_dev_blocked`: an ABORT STE, or, while PASIDs are in use, a
    /// CD-table STE with S1DSS=TERMINATE (the PASIDs keep working). Never fails.
    /// - Throws: `ENOENT` for a device the driver did not probe.
    public override func attachDev(_ dev: PCIDevice, old: IOMMUDomain?) throws(Errno) {
        try smmuDriver.callback(.attachDev, self, dev, old: old) { () throws(Errno) in
            guard let master = dev.driverPrivate as? SMMUv3Master else { throw .noEntry }
            attachDevSTE(self, old: old, master: master, ste: .abort, s1dss: .terminate)
        }
    }

    /// `arm_smmu_blocking_set_dev_pasid`: clears CD `pasid`, flushes the device's ATC for
    /// it, drops the attachment from the old domain's invalidations, and when the last
    /// PASID goes and the RID is on an identity or blocking domain, re-attaches that
    /// domain so the STE drops its CD table.
    /// - Throws: `EOPNOTSUPP` for the blocking domain of a driver built without it;
    ///   `ENOENT` for a device the driver did not probe.
    public override func setDevPasid(_ dev: PCIDevice, pasid: PASID, old: IOMMUDomain?) throws(Errno) {
        guard ops.contains(.setDevPasid) else { throw .notSupported }
        try smmuDriver.callback(.setDevPasid, self, dev, pasid: pasid, old: old) { () throws(Errno) in
            guard let master = dev.driverPrivate as? SMMUv3Master else { throw .noEntry }
            removePasid(master, pasid: pasid.rawValue, old: old)
        }
    }
}

/// The driver's static identity domain (`arm_smmu_identity_domain`): RID attach only.
public final class SMMUv3IdentityDomain: IOMMUDomain, @unchecked Sendable {
    unowned let smmuDriver: ArmSMMUv3Driver

    init(driver: ArmSMMUv3Driver) {
        smmuDriver = driver
        super.init(type: .identity, owner: driver, ops: [.attachDev])
    }

    /// `arm_smmu_attach_dev_identity`: a BYPASS STE, or, while PASIDs are in use, a
    /// CD-table STE with S1DSS=BYPASS. Never fails.
    /// - Throws: `ENOENT` for a device the driver did not probe.
    public override func attachDev(_ dev: PCIDevice, old: IOMMUDomain?) throws(Errno) {
        try smmuDriver.callback(.attachDev, self, dev, old: old) { () throws(Errno) in
            guard let master = dev.driverPrivate as? SMMUv3Master else { throw .noEntry }
            attachDevSTE(self, old: old, master: master, ste: .bypass(features: master.unit.features), s1dss: .bypass)
        }
    }
}
