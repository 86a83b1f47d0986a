import IOMMUCore

/// Deliberate driver bugs, for showing what the model catches.
public struct SMMUv3DriverBugs: OptionSet, Hashable, Sendable {
    /// The raw bug bits.
    public let rawValue: UInt32
    /// Wraps raw bits.
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// The STE writer stores the words but never issues CFGI_STE: the SMMU keeps using
    /// the STE it cached, so a detached device still translates through the old domain.
    public static let skipCFGIAfterSTEWrite = SMMUv3DriverBugs(rawValue: 1 << 0)
    /// Freeing an S1 or SVA domain returns its ASID to the allocator before its CDs are
    /// cleared and its TLB entries invalidated, so the next owner of the ASID inherits
    /// them.
    public static let freeASIDWhileCDUsesIt = SMMUv3DriverBugs(rawValue: 1 << 1)
    /// The attach sequence enables PCI ATS whatever STE it installs, including a plain
    /// bypass STE, whose ATS translation requests the SMMU refuses.
    public static let atsOnBypassSTE = SMMUv3DriverBugs(rawValue: 1 << 2)
}

/// A point in the attach sequence (`arm_smmu_attach_prepare`, the STE write,
/// `arm_smmu_attach_commit`).
package enum SMMUv3AttachPhase: Hashable, Sendable {
    /// The new domain's invalidation array includes the master; the STE is not written.
    case prepared
    /// The STE (and CD) are written; the old domain still invalidates the master.
    case installed
}

/// The ARM SMMUv3 driver (`arm_smmu_ops`, `drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.c`):
/// one object shared by every ``ArmSMMUv3`` unit, holding what the kernel keeps global to
/// the driver: the ASID allocator (`arm_smmu_asid_xa`, shared by all SMMUs) and the lock
/// that serialises attach against ASID changes (`arm_smmu_asid_lock`).
public final class ArmSMMUv3Driver: IOMMUDriver, @unchecked Sendable {
    /// `"arm-smmu-v3"`.
    public let name = "arm-smmu-v3"
    /// Deliberate bugs this instance has (none for the real driver).
    public let bugs: SMMUv3DriverBugs
    /// The driver's lock: `arm_smmu_asid_lock`, the group mutex and `streams_mutex` folded
    /// together. Taken before any unit's hardware lock.
    let lock = RecursiveLock()
    /// `arm_smmu_asid_xa`: ASID → owning domain, for every live S1 and SVA domain of every
    /// SMMU of the driver.
    var asids: [UInt16: ObjectIdentifier] = [:]
    /// The units of the driver, by ``ArmSMMUv3/index``.
    var units: [ArmSMMUv3] = []
    /// Devices whose firmware node says `dma-can-stall`.
    private var canStall: Set<RID> = []
    /// Firmware-described direct-mapped regions (IORT RMRs) per device.
    private var rmrs: [RID: [ReservedRegion]] = [:]
    /// Devices whose root complex firmware says CANWBS (`IOMMU_FWSPEC_PCI_RC_CANWBS`).
    private var canWBSDevices: Set<RID> = []
    /// Test hook: called at each phase of an attach (driver lock held), so a test can
    /// act between the phases the kernel orders (check 67).
    package var attachObserver: (@Sendable (SMMUv3AttachPhase, RID) -> Void)?
    /// The ops of every stage-1 and stage-2 paging domain this driver allocates.
    let pagingOps: DomainOps
    private let _userPasidTable: Bool
    private var _blocked: SMMUv3BlockedDomain!
    private var _identity: SMMUv3IdentityDomain!
    /// The test hook's log of the core's callbacks (``recordsCalls``).
    private let callLog = DriverCallLog()

    /// The driver, optionally with deliberate `bugs`.
    public init(bugs: SMMUv3DriverBugs = []) {
        self.bugs = bugs
        _userPasidTable = true
        pagingOps = .paging
        _blocked = SMMUv3BlockedDomain(driver: self, setsPasid: true)
        _identity = SMMUv3IdentityDomain(driver: self)
    }

    /// Test hook (no kernel counterpart): a driver built without some of what
    /// `arm_smmu_ops` has, so the conformance suite can check what the core does when a
    /// driver lacks it.
    /// - Parameters:
    ///   - userPasidTable: `false` clears `user_pasid_table`: a nested domain on the RID
    ///     then translates the RID only (its STE gets S1CDMax 0 whatever the vSTE says),
    ///     and the core refuses RID-plus-all-PASIDs attach.
    ///   - blockedDomainSetsPasid: `false` builds a blocked domain without
    ///     `set_dev_pasid`, so the core cannot remove a PASID and refuses PASID attach.
    ///   - pagingDomainsSetPasid: `false` builds stage-1 and stage-2 paging domains
    ///     without `set_dev_pasid` (SVA domains keep it).
    package init(bugs: SMMUv3DriverBugs = [], userPasidTable: Bool, blockedDomainSetsPasid: Bool,
                 pagingDomainsSetPasid: Bool) {
        self.bugs = bugs
        _userPasidTable = userPasidTable
        pagingOps = pagingDomainsSetPasid ? .paging : DomainOps.paging.subtracting(.setDevPasid)
        _blocked = SMMUv3BlockedDomain(driver: self, setsPasid: blockedDomainSetsPasid)
        _identity = SMMUv3IdentityDomain(driver: self)
    }

    /// `arm_smmu_blocked_domain`.
    public var blockedDomain: IOMMUDomain? { _blocked }
    /// `arm_smmu_identity_domain`.
    public var identityDomain: IOMMUDomain? { _identity }
    /// `arm_smmu_ops.release_domain`: the blocking domain.
    public var releaseDomain: IOMMUDomain? { _blocked }
    /// `arm_smmu_ops.user_pasid_table = 1`: a nested domain on the RID hands the guest its
    /// own CD table, which serves the RID and every PASID. False only for a driver built
    /// without it (a test initialiser).
    public var userPasidTable: Bool { _userPasidTable }

    /// ASIDs in use (`arm_smmu_asid_xa`), ascending.
    public var allocatedASIDs: [UInt16] { lock.withLock { asids.keys.sorted() } }

    /// Records the firmware property `dma-can-stall` for the device at `rid`: the device
    /// can wait for the SMMU to resolve a fault, so its faults stall (with
    /// ``SMMUv3Features/stalls``) and become I/O page faults. Call before the device is
    /// added.
    public func setDMACanStall(_ rid: RID) { lock.withLock { _ = canStall.insert(rid) } }

    /// Records that the IORT root complex node above the device at `rid` has the CANWBS
    /// memory-access flag (`IOMMU_FWSPEC_PCI_RC_CANWBS`): its DMA is always coherent
    /// write-back, even a PCI No-Snoop one, so a guest cannot make it bypass the cache.
    /// `arm_smmu_master_canwbs` reads it; a vSMMU needs it or S2FWB.
    public func setCANWBS(_ rid: RID) { lock.withLock { _ = canWBSDevices.insert(rid) } }

    /// `arm_smmu_master_canwbs`: the device's firmware says CANWBS.
    func canWBS(_ rid: RID) -> Bool { lock.withLock { canWBSDevices.contains(rid) } }

    /// Records a firmware IORT RMR for `rid`: a range the device uses before and after
    /// the OS takes over, reported as `IOMMU_RESV_DIRECT` (or `_RELAXABLE`) so it stays
    /// identity-mapped. Call before the device is added.
    public func addRMR(for rid: RID, start: IOVA, length: UInt64, relaxable: Bool = false) {
        lock.withLock {
            rmrs[rid, default: []].append(ReservedRegion(start: start, length: length, prot: [.read, .write],
                                                         kind: relaxable ? .directRelaxable : .direct))
        }
    }

    /// `arm_smmu_get_resv_regions`: the software-managed MSI window (`MSI_IOVA_BASE`
    /// 0x8000000, 1 MiB, `IOMMU_RESV_SW_MSI`) and the device's RMRs
    /// (`iommu_dma_get_resv_regions`).
    public func reservedRegions(_ dev: PCIDevice) -> [ReservedRegion] {
        [ReservedRegion(start: 0x800_0000, length: 0x10_0000, prot: [.write, .noexec, .mmio], kind: .swMSI)]
            + lock.withLock { rmrs[dev.rid] ?? [] }
    }

    /// The per-device state of a probed device, nil otherwise.
    public func master(_ dev: PCIDevice) -> SMMUv3Master? { dev.driverPrivate as? SMMUv3Master }

    // MARK: probe and release

    /// `arm_smmu_probe_device`: inserts the device's StreamID (its RID) into the unit's
    /// stream tree (allocating its level-2 stream table on a two-level table), enables
    /// PASID with the width the PCI capability and the SMMU allow (capped to a linear CD
    /// table without two-level CD support), marks it stalling if firmware says
    /// `dma-can-stall` (or the SMMU forces stalls), and prepares ATS
    /// (`arm_smmu_master_prepare_ats`). ATS itself is enabled only when a domain that
    /// allows it is attached; PRI, for a PCI function that has it on an SMMU with a PRI
    /// queue, is marked supported (`arm_smmu_init_pri`) and enabled and disabled with ATS.
    /// - Throws: `ENODEV` if the device is not behind an ``ArmSMMUv3`` of this driver;
    ///   `EBUSY` if it is already probed; `ERANGE` for a StreamID beyond the stream table;
    ///   `ENOMEM`.
    public func probeDevice(_ dev: PCIDevice) throws(Errno) {
        try lock.withLock { () throws(Errno) in
            guard let unit = dev.iommu as? ArmSMMUv3, unit.smmuDriver === self else { throw .noDevice }
            guard dev.driverPrivate == nil else { throw .busy }
            let sid = UInt32(dev.rid.raw)
            guard unit.masters[sid] == nil else { throw .noDevice }
            try unit.initStreamTableEntry(sid: sid)
            let master = SMMUv3Master(dev: dev, unit: unit, streams: [sid])
            // PASID first: it must be enabled before, and disabled after, ATS.
            if let p = dev.caps.pasid, unit.ssidBits > 0 {
                dev.pasidEnabled = true
                master.ssidBits = min(p.width, unit.ssidBits)
            }
            if !unit.features.contains(.twoLevelCDTable) {
                master.ssidBits = min(master.ssidBits, Int(SMMUv3CDL1.linearCDMax))
            }
            let f = unit.features
            if (f.contains(.stalls) && canStall.contains(dev.rid)) || f.contains(.stallForce) {
                master.stallEnabled = true
            }
            initPRI(master)
            unit.masters[sid] = master
            dev.driverPrivate = master
            unit.hardwareLock.withLock { unit.smmu.attachEndpoint(dev, sid: sid) }
        }
    }

    /// `arm_smmu_release_device`: PASID disabled, the StreamID removed, the CD table freed.
    /// The core attached the release (blocking) domain first, so the STE aborts.
    public func releaseDevice(_ dev: PCIDevice) {
        lock.withLock {
            guard let master = dev.driverPrivate as? SMMUv3Master else { return }
            let unit = master.unit
            if master.iopfRefcount != 0 {
                unit.warn(dev, "arm_smmu_release_device", "released with \(master.iopfRefcount) iopf users")
            }
            if dev.atsEnabled {
                disablePRI(master)
                dev.atsEnabled = false
                master.atsEnabled = false
            }
            dev.pasidEnabled = false
            master.ssidBits = 0
            for sid in master.streams { unit.masters[sid] = nil }
            master.cdTable.free()
            dev.driverPrivate = nil
            unit.hardwareLock.withLock { for sid in master.streams { unit.smmu.detachEndpoint(sid: sid) } }
        }
    }

    // MARK: domain allocation

    /// `arm_smmu_domain_alloc_paging_flags`: stage 1 when the SMMU has it and no flag asks
    /// otherwise; `NEST_PARENT` gives a stage-2 nesting parent (needs nesting);
    /// `DIRTY_TRACKING` and `PASID` need stage 1. The domain is finalised for the device's
    /// SMMU at once: an LPAE table for its stage, then an ASID (stage 1, from the global
    /// allocator, never 0) or a VMID (stage 2, from the SMMU's allocator, never 0).
    /// - Throws: `EOPNOTSUPP` for user data, unknown flag combinations, a missing stage or
    ///   nesting, dirty tracking on stage 2; `ENODEV` for a device not behind this
    ///   driver; `ENOSPC` when no ASID or VMID is free; `ENOMEM`.
    public func domainAllocPaging(_ dev: PCIDevice, flags: DomainAllocFlags, userData: [UInt8]?) throws(Errno) -> IOMMUDomain {
        guard userData == nil else { throw .notSupported }
        guard let unit = dev.iommu as? ArmSMMUv3, unit.smmuDriver === self else { throw .noDevice }
        guard flags.isSubset(of: [.dirtyTracking, .pasid, .nestParent]) else { throw .notSupported }
        let stage: SMMUv3Domain.Stage
        switch flags {
        case []:
            stage = unit.features.contains(.stage1) ? .s1 : .s2
        case [.nestParent]:
            guard unit.features.contains(.nesting) else { throw .notSupported }
            stage = .s2
        case [.dirtyTracking], [.dirtyTracking, .pasid], [.pasid]:
            guard unit.features.contains(.stage1) else { throw .notSupported }
            stage = .s1
        default:
            throw .notSupported
        }
        return try lock.withLock { () throws(Errno) -> IOMMUDomain in
            try SMMUv3Domain(driver: self, unit: unit, stage: stage, nestParent: flags.contains(.nestParent),
                             dirtyTracking: flags.contains(.dirtyTracking))
        }
    }

    /// `arm_smmu_sva_domain_alloc`: an SVA domain for `mm`: a global ASID and an mm
    /// notifier; its CDs point TTB0 at the mm's own page table.
    /// - Throws: `EOPNOTSUPP` when the SMMU is not fit for SVA (`ARM_SMMU_FEAT_SVA`, see
    ///   `arm_smmu_sva_supported`) or the mm's page table is not the arm64 format the
    ///   SMMU walks; `ENOSPC` when no ASID is free; `EFAULT` when the mm is exiting (its
    ///   notifier cannot be registered).
    public func domainAllocSVA(_ dev: PCIDevice, mm: Process) throws(Errno) -> IOMMUDomain {
        guard let unit = dev.iommu as? ArmSMMUv3, unit.smmuDriver === self else { throw .noDevice }
        guard unit.features.contains(.sva), unit.canShare(mm) else { throw .notSupported }
        return try lock.withLock { () throws(Errno) -> IOMMUDomain in try SMMUv3SVADomain(driver: self, unit: unit, mm: mm) }
    }

    /// `arm_smmu_ops.page_response` (`arm_smmu_page_response`): the core's answer to a
    /// page-request group made from a stall becomes a RESUME of the stalled transaction:
    /// retry on success, abort otherwise. No CMD_SYNC follows (RESUME completes later).
    public var pageResponse: IOMMUPageResponseOp? {
        { dev, evt, msg in (dev.iommu as? ArmSMMUv3)?.pageResponse(dev, evt, msg) }
    }

    /// `arm_smmu_capable`: cache coherency when the SMMU walks coherently, NOEXEC, dirty
    /// tracking with hardware dirty state and coherency; enforced coherency for a master
    /// that can force write-back (not modelled: false).
    public func capable(_ dev: PCIDevice, _ cap: IOMMUCap) -> Bool {
        guard let unit = dev.iommu as? ArmSMMUv3 else { return false }
        switch cap {
        case .cacheCoherency: return unit.features.contains(.coherency)
        case .noexec: return true
        case .dirtyTracking: return unit.features.isSuperset(of: [.hardwareDirty, .coherency])
        case .enforceCacheCoherency, .preBootProtection: return false
        }
    }

    /// Registers `unit` with the driver and returns its index.
    func register(_ unit: ArmSMMUv3) -> Int {
        lock.withLock {
            units.append(unit)
            return units.count - 1
        }
    }

    // MARK: ASIDs

    /// `xa_alloc(&arm_smmu_asid_xa, ..., XA_LIMIT(1, (1 << asid_bits) - 1))`: the lowest free
    /// ASID, never 0. Driver lock held.
    func allocateASID(for domain: AnyObject, bits: Int) -> UInt16? {
        let limit = (1 << bits) - 1
        var asid = 1
        while asid <= limit && asids[UInt16(asid)] != nil { asid += 1 }
        guard asid <= limit else { return nil }
        asids[UInt16(asid)] = ObjectIdentifier(domain)
        auditASID(UInt16(asid), event: "asid alloc", what: "handed out")
        return UInt16(asid)
    }

    /// `xa_erase(&arm_smmu_asid_xa, asid)`. Driver lock held.
    func releaseASID(_ asid: UInt16) {
        asids[asid] = nil
        auditASID(asid, event: "asid free", what: "freed")
    }

    /// The model's ASID/VMID audit: an ASID that is freed or handed out must not be in any valid
    /// CD of any master, nor in any SMMU's TLB.
    private func auditASID(_ asid: UInt16, event: String, what: String) {
        for unit in units {
            guard let machine = unit.machine, machine.checker.isEnabled else { continue }
            for master in unit.masters.values {
                for (ssid, cd) in master.cdTable.validCDs() where cd.asid == asid {
                    machine.checker.report(Violation(.asidVMIDAccounting, device: master.rid, pasid: ssid == 0 ? nil : PASID(rawValue: ssid),
                                                     event: event,
                                                     message: "ASID \(asid) \(what) while CD \(ssid) of \(master.rid) still carries it"))
                }
            }
            if unit.hardwareLock.withLock({ unit.smmu.tlbHolds(vmid: 0, asid: asid) }) {
                machine.checker.report(Violation(.asidVMIDAccounting, event: event,
                                                 message: "ASID \(asid) \(what) while \(unit.name)'s TLB still holds translations tagged with it"))
            }
        }
    }
}

// MARK: test hooks: failure injection and the callback log

extension ArmSMMUv3Driver {
    /// Runs the body of the `attach_dev` or `set_dev_pasid` callback `op` of `domain`
    /// under the driver lock and, while ``recordsCalls`` is on, logs it with what the
    /// group's PASID array held when it began. A callback the driver makes from inside
    /// another (the blocking domain re-attaching the RID's domain when the last PASID
    /// goes) is not the core's and is not logged.
    func callback(_ op: SMMUv3DriverCall.Op, _ domain: IOMMUDomain, _ dev: PCIDevice, pasid: PASID? = nil,
                  old: IOMMUDomain?, _ body: () throws(Errno) -> Void) throws(Errno) {
        try lock.withLock { () throws(Errno) in try callLog.run(op, domain, dev, pasid: pasid, old: old, body) }
    }

    /// Test hook (no kernel counterpart): whether the `attach_dev` and `set_dev_pasid`
    /// callbacks the core makes are logged in ``calls``. Off by default, so a long-lived
    /// driver keeps no log; turning it off forgets the log.
    package var recordsCalls: Bool {
        get { lock.withLock { callLog.isRecording } }
        set { lock.withLock { callLog.isRecording = newValue } }
    }

    /// Test hook: the callbacks logged while ``recordsCalls`` is on, oldest first.
    package var calls: [SMMUv3DriverCall] { lock.withLock { callLog.calls } }

    /// Test hook: forgets the logged callbacks (logging goes on).
    package func clearCalls() { lock.withLock { callLog.clear() } }

    /// Test hook (no kernel counterpart): while `errno` is set, every non-blocking
    /// `set_dev_pasid` on `dev` (stage 1 or SVA: `arm_smmu_set_pasid`) fails with it
    /// before the CD table or the STE is touched; nil stops it.
    /// - Throws: `ENODEV` for a device this driver has not probed.
    package func failSetDevPasid(_ errno: Errno?, on dev: PCIDevice) throws(Errno) {
        try lock.withLock { () throws(Errno) in
            guard let master = dev.driverPrivate as? SMMUv3Master, master.unit.smmuDriver === self else {
                throw .noDevice
            }
            master.failSetDevPasid = errno
        }
    }
}

/// One callback the core made to the SMMUv3 driver, as its test hook logs it.
package typealias SMMUv3DriverCall = DriverCallRecord
