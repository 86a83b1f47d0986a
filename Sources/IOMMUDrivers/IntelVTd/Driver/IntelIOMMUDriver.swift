import IOMMUCore

/// Deliberate driver bugs, for showing what the invariant checker catches.
public struct VTdDriverBugs: OptionSet, Hashable, Sendable {
    /// The raw bug bits.
    public let rawValue: UInt32
    /// Wraps raw bits.
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// `iotlb_sync` does nothing: unmapped IOVAs stay in the IOTLB/ATC (stale
    /// translation after unmap).
    public static let skipIOTLBFlushOnUnmap = VTdDriverBugs(rawValue: 1 << 0)
    /// `domain_detach_iommu` frees the DID on the first detach although other
    /// attachments still hold it (domain ID freed while in use).
    public static let freeDIDWhileReferenced = VTdDriverBugs(rawValue: 1 << 1)
    /// `intel_pasid_tear_down_entry` never drains the page-request queue (PASID
    /// teardown out of order, PASID reused before teardown).
    public static let skipPRQDrainOnTeardown = VTdDriverBugs(rawValue: 1 << 2)
}

/// The Intel VT-d driver (`intel_iommu_ops`, `drivers/iommu/intel/iommu.c`): one object
/// shared by every ``IntelIOMMU`` unit. Scalable mode only.
public final class IntelIOMMUDriver: IOMMUDriver, @unchecked Sendable {
    /// `"intel-iommu"`.
    public let name = "intel-iommu"
    /// Deliberate bugs this instance has (none for the real driver).
    public let bugs: VTdDriverBugs
    /// The driver's configuration lock (the kernel's `device_domain_lock`, `did_lock`,
    /// `cache_lock` folded together). Taken before any unit's hardware lock.
    let lock = RecursiveLock()
    /// Whether the first- and second-stage paging domains this driver allocates have
    /// `set_dev_pasid` (false only for a driver variant built for the conformance suite).
    let pagingDomainsSetPasid: Bool
    private var _blocked: VTdBlockedDomain!
    private var _identity: VTdIdentityDomain!
    /// Firmware-described RMRRs per device (the DMAR table's RMRR structures).
    private var rmrrs: [RID: [ReservedRegion]] = [:]
    /// The test hook's log of the core's callbacks (``recordsCalls``).
    private let callLog = DriverCallLog()

    /// The driver, optionally with deliberate `bugs`.
    public init(bugs: VTdDriverBugs = []) {
        self.bugs = bugs
        pagingDomainsSetPasid = true
        _blocked = VTdBlockedDomain(driver: self, setsPasid: true)
        _identity = VTdIdentityDomain(driver: self)
    }

    /// Test hook (no kernel counterpart): a driver built without some of what
    /// `intel_iommu_ops` has, so the conformance suite can check what the core does when
    /// an op is missing. (`user_pasid_table` needs no switch: `intel_iommu_ops` never
    /// sets it, PASIDs attach one by one.)
    /// - Parameters:
    ///   - blockedDomainSetsPasid: `false` builds a blocking domain without
    ///     `set_dev_pasid`, so the core cannot remove a PASID and refuses PASID attach.
    ///   - pagingDomainsSetPasid: `false` builds first- and second-stage paging domains
    ///     without `set_dev_pasid` (identity, SVA and supervisor-SVA domains keep it).
    package init(bugs: VTdDriverBugs = [], blockedDomainSetsPasid: Bool, pagingDomainsSetPasid: Bool) {
        self.bugs = bugs
        self.pagingDomainsSetPasid = pagingDomainsSetPasid
        _blocked = VTdBlockedDomain(driver: self, setsPasid: blockedDomainSetsPasid)
        _identity = VTdIdentityDomain(driver: self)
    }

    /// `intel_iommu_ops.blocked_domain`.
    public var blockedDomain: IOMMUDomain? { _blocked }
    /// `intel_iommu_ops.identity_domain`.
    public var identityDomain: IOMMUDomain? { _identity }
    /// `intel_iommu_ops.release_domain` (the blocking domain).
    public var releaseDomain: IOMMUDomain? { _blocked }

    /// Records a firmware RMRR for `rid` (ACPI DMAR "Reserved Memory Region Reporting"):
    /// a range the device may DMA to before and after the OS takes over, so it must stay
    /// identity-mapped. `relaxable` marks the USB/graphics RMRRs the kernel lets
    /// assignment drop (`IOMMU_RESV_DIRECT_RELAXABLE`). Call before the device is added.
    public func addRMRR(for rid: RID, start: IOVA, length: UInt64, relaxable: Bool = false) {
        lock.withLock {
            rmrrs[rid, default: []].append(ReservedRegion(start: start, length: length, prot: [.read, .write],
                                                          kind: relaxable ? .directRelaxable : .direct))
        }
    }

    /// `intel_iommu_get_resv_regions`: the device's RMRRs plus the interrupt window
    /// 0xfee00000–0xfeefffff (`IOMMU_RESV_MSI`), which DMA never translates.
    public func reservedRegions(_ dev: PCIDevice) -> [ReservedRegion] {
        lock.withLock { rmrrs[dev.rid] ?? [] } + [ReservedRegion(start: 0xfee0_0000, length: 0x10_0000, kind: .msi)]
    }

    /// The per-device state of a probed device, nil otherwise.
    public func deviceInfo(_ dev: PCIDevice) -> VTdDeviceInfo? { dev.driverPrivate as? VTdDeviceInfo }

    /// `intel_iommu_probe_device`: allocates the device's PASID table (sized from its
    /// PASID width and the unit's), enables PASID, then ATS, then PRI as the unit
    /// supports them, and programs the scalable-mode context entry. A context copied
    /// from a previous kernel is kept (recorded) until the device is attached for real.
    /// - Throws: `ENODEV` if the device is not behind an ``IntelIOMMU`` of this driver;
    ///   `EBUSY` if it is already probed; `ENOMEM`.
    public func probeDevice(_ dev: PCIDevice) throws(Errno) {
        try lock.withLock { () throws(Errno) in
            guard let unit = dev.iommu as? IntelIOMMU, unit.intelDriver === self else { throw .noDevice.from("intel_iommu_probe_device", "\(dev.rid) is not behind a VT-d unit of this driver") }
            guard unit.infos[dev.rid.raw] == nil else { throw .busy.from("intel_iommu_probe_device", "\(dev.rid) is already probed") }
            let caps = unit.caps
            var maxPasid: UInt32 = 1
            if let p = dev.caps.pasid, caps.pasid { maxPasid = min(UInt32(1) << UInt32(p.width), caps.maxPasids) }
            let info = try VTdDeviceInfo(dev: dev, unit: unit, maxPasid: maxPasid)
            // PASID must be enabled before ATS (PCIe), PRI needs both.
            dev.pasidEnabled = dev.caps.pasid != nil && caps.pasid
            dev.atsEnabled = dev.caps.ats && caps.deviceTLB
            dev.priEnabled = dev.caps.pri && caps.pageRequests && dev.atsEnabled && dev.pasidEnabled
            if unit.copied[dev.rid] == nil {
                do throws(Errno) { try info.programContext() } catch {
                    info.freeTables()
                    dev.pasidEnabled = false
                    dev.atsEnabled = false
                    dev.priEnabled = false
                    throw error
                }
            }
            unit.infos[dev.rid.raw] = info
            dev.driverPrivate = info
            unit.hardwareLock.withLock { unit.vtd.attachEndpoint(dev) }
        }
    }

    /// `intel_iommu_release_device`: blocks the RID, clears the context entry (with
    /// context, PASID-cache and IOTLB invalidations), frees the PASID table and disables
    /// PRI, ATS and PASID (in that order). A device still on the iopf queue leaves it
    /// after its entries are torn down (pending groups are answered `INVALID`).
    public func releaseDevice(_ dev: PCIDevice) {
        lock.withLock {
            guard let info = dev.driverPrivate as? VTdDeviceInfo else { return }
            let unit = info.unit
            unit.blockTranslation(info)
            for (pasid, _) in info.presentEntries() { unit.tearDown(info, pasid: pasid, faultIgnore: false) }
            if info.iopfRefcount > 0 {
                info.iopfRefcount = 0
                unit.iopfQueue.removeDevice(dev)
            }
            info.clearContext()
            info.freeTables()
            dev.priEnabled = false
            dev.atsEnabled = false
            dev.pasidEnabled = false
            unit.infos[dev.rid.raw] = nil
            dev.driverPrivate = nil
            unit.hardwareLock.withLock { unit.vtd.detachEndpoint(dev.rid) }
        }
    }

    /// `intel_iommu_domain_alloc_paging_flags`: first stage when the unit has it and
    /// `flags` ⊆ {PASID}; otherwise second stage (NEST_PARENT, DIRTY_TRACKING, PASID).
    /// - Throws: `EOPNOTSUPP` for user data, flags no stage supports, or dirty tracking
    ///   without SLADS; `ENODEV` for a device not behind a unit of this driver; `ENOMEM`.
    public func domainAllocPaging(_ dev: PCIDevice, flags: DomainAllocFlags, userData: [UInt8]?) throws(Errno) -> IOMMUDomain {
        guard userData == nil else { throw .notSupported.from("intel_iommu_domain_alloc_paging_flags", "VT-d paging domains take no user data") }
        guard let unit = dev.iommu as? IntelIOMMU, unit.intelDriver === self else { throw .noDevice.from("intel_iommu_domain_alloc_paging_flags", "\(dev.rid) is not behind a VT-d unit of this driver") }
        let caps = unit.caps
        let memory = unit.vtd.memory
        if caps.scalableMode && caps.firstStage && flags.isSubset(of: [.pasid]) {
            var sizes: UInt64 = 1 << 12 | 1 << 21
            if caps.firstStage1G { sizes |= 1 << 30 }
            return try DMARDomain(driver: self, stage: .first, levels: 4, pgsize: sizes, memory: memory,
                                  nestParent: false, dirty: false)
        }
        guard caps.secondStage, flags.isSubset(of: [.nestParent, .dirtyTracking, .pasid]),
              let levels = caps.secondStageLevels else { throw .notSupported.from("intel_iommu_domain_alloc_paging_flags", "no second stage for flags \(flags) on this unit") }
        if flags.contains(.dirtyTracking) && !caps.secondStageAD { throw .notSupported.from("intel_iommu_domain_alloc_paging_flags", "dirty tracking needs second-stage A/D bits (ECAP.SSADS)") }
        var sizes: UInt64 = 1 << 12
        if caps.secondStageLargePages & 1 != 0 { sizes |= 1 << 21 }
        if caps.secondStageLargePages & 2 != 0 { sizes |= 1 << 30 }
        return try DMARDomain(driver: self, stage: .second, levels: levels, pgsize: sizes, memory: memory,
                              nestParent: flags.contains(.nestParent), dirty: flags.contains(.dirtyTracking))
    }

    /// `intel_svm_domain_alloc`: an SVA domain on `mm`.
    /// - Throws: `ENODEV` if the unit is not SVM capable (or the device is not behind
    ///   this driver); `EINVAL` if PASID or ATS is not enabled on the device, or it
    ///   supports PRI that is not enabled; `EFAULT` if the mm is already exiting.
    public func domainAllocSVA(_ dev: PCIDevice, mm: Process) throws(Errno) -> IOMMUDomain {
        guard let unit = dev.iommu as? IntelIOMMU, unit.intelDriver === self, unit.caps.svmCapable else { throw .noDevice.from("intel_svm_domain_alloc", "\(dev.rid) is not behind an SVM-capable VT-d unit of this driver") }
        guard dev.pasidEnabled, dev.atsEnabled else { throw .invalidArgument.from("intel_svm_domain_alloc", "SVA needs PASID and ATS enabled on \(dev.rid)") }
        if dev.caps.pri && !dev.priEnabled { throw .invalidArgument.from("intel_svm_domain_alloc", "\(dev.rid) has PRI but it is not enabled") }
        return try VTdSVADomain(driver: self, mm: mm)
    }

    /// `intel_iommu_ops.page_response` (`intel_iommu_page_response`): a page-group
    /// response descriptor through the device's unit's invalidation queue.
    public var pageResponse: IOMMUPageResponseOp? {
        { dev, evt, msg in (dev.iommu as? IntelIOMMU)?.pageResponse(dev, evt, msg) }
    }

    /// `intel_iommu_capable`: cache coherency always; dirty tracking with SLADS on the
    /// device's unit.
    public func capable(_ dev: PCIDevice, _ cap: IOMMUCap) -> Bool {
        switch cap {
        case .cacheCoherency, .preBootProtection: return true
        case .enforceCacheCoherency: return (dev.iommu as? IntelIOMMU)?.caps.snoopControl ?? false
        case .dirtyTracking: return (dev.iommu as? IntelIOMMU)?.caps.secondStageAD ?? false
        case .noexec: return false
        }
    }
}

// MARK: test hooks: failure injection and the callback log

extension IntelIOMMUDriver {
    /// Runs the body of the `attach_dev` or `set_dev_pasid` callback `op` of `domain`
    /// under the driver lock and, while ``recordsCalls`` is on, logs it with what the
    /// group's PASID array held when it began. A callback entered while another one runs
    /// under the lock is not logged (the VT-d driver never calls its own callbacks; the
    /// guard keeps the log to the core's calls should it ever do).
    func callback(_ op: VTdDriverCall.Op, _ domain: VTdDomain, _ dev: PCIDevice, pasid: PASID? = nil,
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
    package var calls: [VTdDriverCall] { lock.withLock { callLog.calls } }

    /// Test hook: forgets the logged callbacks (logging goes on).
    package func clearCalls() { lock.withLock { callLog.clear() } }

    /// Test hook (no kernel counterpart): while `errno` is set, every non-blocking
    /// `set_dev_pasid` on `dev` (paging, identity, SVA and supervisor-SVA domains:
    /// `intel_iommu_set_dev_pasid` and its siblings) fails with it before a PASID entry,
    /// a cache tag, a DID reference or an invalidation descriptor is touched; nil stops
    /// it. The blocking domain's `set_dev_pasid` is not affected.
    /// - Throws: `ENODEV` for a device this driver has not probed.
    package func failSetDevPasid(_ errno: Errno?, on dev: PCIDevice) throws(Errno) {
        try lock.withLock { () throws(Errno) in
            guard let info = dev.driverPrivate as? VTdDeviceInfo, info.unit.intelDriver === self else {
                throw .noDevice.from("failSetDevPasid", "\(dev.rid) was not probed by this VT-d driver")
            }
            info.failSetDevPasid = errno
        }
    }
}

/// One callback the core made to the VT-d driver, as its test hook logs it.
package typealias VTdDriverCall = DriverCallRecord
