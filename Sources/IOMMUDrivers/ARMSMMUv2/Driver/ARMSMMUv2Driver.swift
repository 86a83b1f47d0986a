import IOMMUCore

/// The arm-smmu driver (`arm_smmu_ops` in `drivers/iommu/arm/arm-smmu/arm-smmu.c`): one
/// object for every SMMUv1/v2 unit, with its static identity and blocked domains.
///
/// Each unit's software state is guarded by ``lock`` (the kernel's `stream_map_mutex`
/// and each domain's `init_mutex`, folded together); register accesses take the unit's
/// hardware lock inside it.
public final class ARMSMMUv2Driver: IOMMUDriver, @unchecked Sendable {
    /// `"arm-smmu"`.
    public let name = "arm-smmu"
    /// Guards the units' stream maps and context banks and every domain's context.
    public let lock = RecursiveLock()
    private var identity: ARMSMMUv2IdentityDomain!
    private var blocked: ARMSMMUv2BlockedDomain!
    private var attachLog: [ARMSMMUv2AttachRecord] = []

    /// A driver object.
    public init() {
        identity = ARMSMMUv2IdentityDomain(driver: self)
        blocked = ARMSMMUv2BlockedDomain(driver: self)
    }

    /// `arm_smmu_identity_domain`: streams bypass (S2CR type bypass).
    public var identityDomain: IOMMUDomain? { identity }
    /// `arm_smmu_blocked_domain`: streams fault (S2CR type fault).
    public var blockedDomain: IOMMUDomain? { blocked }

    /// `arm_smmu_probe_device`: checks each firmware stream ID and mask against the
    /// unit's widths, creates the master data and takes its stream mapping entries.
    /// - Throws: `ENODEV` for a device behind no SMMUv2; `EINVAL` for a stream ID or
    ///   mask the unit cannot match (the kernel's "out of range"), or a partial overlap
    ///   with another master's SMR; `ENOSPC` when the SMRs are exhausted.
    public func probeDevice(_ dev: PCIDevice) throws(Errno) {
        guard let unit = dev.iommu as? ARMSMMUv2 else { throw .noDevice }
        try lock.withLock { () throws(Errno) in
            let fw = unit.firmwareMaster(dev.rid)
            for sid in fw.streamIDs {
                guard sid.id & ~unit.streamIDMask == 0, sid.mask & ~unit.smrMaskMask == 0 else { throw .invalidArgument }
            }
            let master = ARMSMMUv2Master(unit: unit, rid: dev.rid, firmware: fw)
            try unit.allocSMEs(master)
            dev.driverPrivate = master
        }
    }

    /// `arm_smmu_release_device`: gives the master's stream mapping entries back.
    public func releaseDevice(_ dev: PCIDevice) {
        lock.withLock {
            guard let master = dev.driverPrivate as? ARMSMMUv2Master else { return }
            master.unit.freeSMEs(master)
            dev.driverPrivate = nil
        }
    }

    /// `arm_smmu_domain_alloc_paging`: an S1 paging domain, not yet bound to a unit; its
    /// context (bank, table) is made at the first attach.
    /// - Throws: `EOPNOTSUPP` for allocation flags or user data (the driver has
    ///   `domain_alloc_paging` only, so the core refuses flags); `ENODEV` for a device
    ///   the driver did not probe.
    public func domainAllocPaging(_ dev: PCIDevice, flags: DomainAllocFlags, userData: [UInt8]?) throws(Errno) -> IOMMUDomain {
        guard flags.isEmpty, userData == nil else { throw .notSupported }
        guard let master = dev.driverPrivate as? ARMSMMUv2Master else { throw .noDevice }
        return ARMSMMUv2Domain(driver: self, pgsizeBitmap: master.unit.pgsizeBitmap, allocatedFor: dev)
    }

    /// `arm_smmu_def_domain_type`: what the implementation forces (Qualcomm: identity for
    /// the display, GPU and modem clients it lists).
    public func defDomainType(_ dev: PCIDevice) -> DomainType? {
        guard let master = dev.driverPrivate as? ARMSMMUv2Master else { return nil }
        return master.unit.impl?.defDomainType(master.unit, dev: dev)
    }

    /// `arm_smmu_get_resv_regions`: the software MSI window (`MSI_IOVA_BASE`, 1 MiB)
    /// and the device's IORT RMRs (`iommu_dma_get_resv_regions`).
    public func reservedRegions(_ dev: PCIDevice) -> [ReservedRegion] {
        var regions = [ReservedRegion(start: Self.msiIOVABase, length: Self.msiIOVALength,
                                      prot: [.write, .noexec, .mmio], kind: .swMSI)]
        if let master = dev.driverPrivate as? ARMSMMUv2Master { regions += master.firmware.reservedRegions }
        return regions
    }

    /// `arm_smmu_capable`: cache coherency (coherent table walks), `IOMMU_NOEXEC`.
    public func capable(_ dev: PCIDevice, _ cap: IOMMUCap) -> Bool {
        switch cap {
        case .cacheCoherency:
            guard let master = dev.driverPrivate as? ARMSMMUv2Master else { return false }
            return master.unit.features.contains(.coherentWalk)
        case .noexec: return true
        default: return false
        }
    }

    /// `MSI_IOVA_BASE`.
    public static let msiIOVABase: IOVA = 0x800_0000
    /// `MSI_IOVA_LENGTH`.
    public static let msiIOVALength: UInt64 = 0x10_0000

    // MARK: test hooks

    /// Runs an `attach_dev` body under the driver lock and records the callback.
    func recordAttach(_ domain: IOMMUDomain, _ dev: PCIDevice, old: IOMMUDomain?,
                      _ body: () throws(Errno) -> Void) throws(Errno) {
        try lock.withLock { () throws(Errno) in
            do throws(Errno) {
                try body()
                attachLog.append(ARMSMMUv2AttachRecord(domain: "\(domain)", blocking: domain.type == .blocked,
                                                        rid: dev.rid, old: old.map { "\($0)" }, succeeded: true))
            } catch {
                attachLog.append(ARMSMMUv2AttachRecord(domain: "\(domain)", blocking: domain.type == .blocked,
                                                        rid: dev.rid, old: old.map { "\($0)" }, succeeded: false))
                throw error
            }
        }
    }

    /// Test hook: the `attach_dev` callbacks the core made, oldest first.
    package var attachCalls: [ARMSMMUv2AttachRecord] { lock.withLock { attachLog } }
    /// Test hook: forgets ``attachCalls``.
    package func clearAttachCalls() { lock.withLock { attachLog.removeAll() } }
}

/// One `attach_dev` callback as the driver saw it (a test hook's record).
package struct ARMSMMUv2AttachRecord: Hashable, Sendable {
    package let domain: String
    package let blocking: Bool
    package let rid: RID
    package let old: String?
    package let succeeded: Bool
}
