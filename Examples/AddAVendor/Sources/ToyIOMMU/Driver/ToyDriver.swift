import IOMMUCore

/// The toy IOMMU driver (`struct iommu_ops`): probes devices, allocates paging domains,
/// and offers static blocked and identity domains. One object can run several units;
/// domains of one driver object work on all of its units.
///
/// Each paging domain holds a domain ID (12 bits, from 1) for its whole life: it tags
/// the domain's translations in every unit's IOTLB, and the invalidation commands name it.
public final class ToyDriver: IOMMUDriver, @unchecked Sendable {
    /// `"toy"`.
    public let name = "toy"
    /// The static blocking domain (`iommu_ops.blocked_domain`).
    public private(set) var blockedDomain: IOMMUDomain?
    /// The static pass-through domain (`iommu_ops.identity_domain`).
    public private(set) var identityDomain: IOMMUDomain?
    /// Devices are released onto the blocking domain (`iommu_ops.release_domain`).
    public var releaseDomain: IOMMUDomain? { blockedDomain }
    /// Whether paging domains implement `set_dev_pasid` (false: a variant without PASID
    /// attach, for the conformance suite).
    public let pagingDomainsSetPasid: Bool

    private let lock = Lock()
    private var units: [WeakUnit] = []
    private var domainIDs: Set<UInt16> = []
    private var firmwareRegions: [RID: [ReservedRegion]] = [:]

    /// A driver; the two flags build the variants the conformance suite asks for.
    public init(pagingDomainsSetPasid: Bool = true, blockedDomainSetsPasid: Bool = true) {
        self.pagingDomainsSetPasid = pagingDomainsSetPasid
        blockedDomain = ToyStaticDomain(.blocked, driver: self, setsPasid: blockedDomainSetsPasid)
        identityDomain = ToyStaticDomain(.identity, driver: self, setsPasid: true)
    }

    func register(_ unit: ToyIOMMU) { lock.withLock { units.append(WeakUnit(unit: unit)) } }

    /// The units this driver runs that still exist.
    public var allUnits: [ToyIOMMU] { lock.withLock { units.compactMap(\.unit) } }

    /// Domain IDs currently held by paging domains.
    public var domainIDsInUse: Int { lock.withLock { domainIDs.count } }

    /// The platform firmware describes `regions` for the device at `rid` (an RMRR-like
    /// table). Call before the device is added: the core reads reserved regions at probe.
    public func describeFirmwareRegions(_ regions: [ReservedRegion], for rid: RID) {
        lock.withLock { firmwareRegions[rid] = regions }
    }

    // MARK: iommu_ops

    /// `probe_device`: a device with PASID gets a PASID table (all entries invalid) and
    /// PASID enabled.
    /// - Throws: `ENODEV` for a device not behind a unit of this driver; `ENOMEM`.
    public func probeDevice(_ dev: PCIDevice) throws(Errno) {
        guard let unit = dev.iommu as? ToyIOMMU, unit.toyDriver === self else { throw .noDevice }
        var table: PhysicalAddress?
        if dev.caps.pasid != nil {
            let frame = try unit.toy.memory.allocFrame()
            unit.hardwareLock.withLock {
                unit.toy.memory.setWord(ToyContextEntry(.blocked, tableRoot: frame).raw, at: unit.toy.deviceEntry(dev.rid) + 8)
            }
            table = frame
            dev.pasidEnabled = true
        }
        dev.driverPrivate = ToyDeviceInfo(pasidTable: table)
    }

    /// `release_device`: clears the device's entry and frees its PASID table. A PASID
    /// still attached at this point is a bug in the caller: a WARN (the core detaches
    /// every PASID first).
    public func releaseDevice(_ dev: PCIDevice) {
        guard let unit = dev.iommu as? ToyIOMMU, unit.toyDriver === self,
              let info = dev.driverPrivate as? ToyDeviceInfo else { return }
        if let table = info.pasidTable,
           let pasid = (1..<ToyLayout.pasids).first(where: { ToyContextEntry(raw: unit.toy.memory.word(at: table + UInt64($0) * 8)).isValid }) {
            unit.machine?.recordWarning(Warning(function: "toy_release_device",
                                                message: "\(dev.rid) released with PASID \(pasid) still attached"))
        }
        unit.hardwareLock.withLock {
            unit.toy.memory.setWord(0, at: unit.toy.deviceEntry(dev.rid))
            unit.toy.memory.setWord(0, at: unit.toy.deviceEntry(dev.rid) + 8)
        }
        if let table = info.pasidTable { unit.toy.memory.freeFrame(table) }
        dev.driverPrivate = nil
        dev.pasidEnabled = false
    }

    /// `domain_alloc_paging_flags`: a ``ToyPagingDomain`` with a fresh domain ID.
    /// - Throws: `EOPNOTSUPP` for user data or a flag other than `IOMMU_HWPT_ALLOC_PASID`;
    ///   `ENOSPC` when no domain ID is free; `ENOMEM`.
    public func domainAllocPaging(_ dev: PCIDevice, flags: DomainAllocFlags, userData: [UInt8]?) throws(Errno) -> IOMMUDomain {
        guard userData == nil, flags.isSubset(of: [.pasid]), let unit = dev.iommu as? ToyIOMMU else { throw .notSupported }
        let did = try allocateDomainID()
        do throws(Errno) {
            return try ToyPagingDomain(driver: self, memory: unit.toy.memory, domainID: did)
        } catch {
            freeDomainID(did)
            throw error
        }
    }

    /// `get_resv_regions`: what firmware described for the device.
    public func reservedRegions(_ dev: PCIDevice) -> [ReservedRegion] {
        lock.withLock { firmwareRegions[dev.rid] ?? [] }
    }

    // MARK: domain IDs

    private func allocateDomainID() throws(Errno) -> UInt16 {
        try lock.withLock { () throws(Errno) -> UInt16 in
            guard let did = (1...UInt16(0xFFF)).first(where: { !domainIDs.contains($0) }) else { throw .noSpace }
            domainIDs.insert(did)
            return did
        }
    }

    func freeDomainID(_ did: UInt16) { lock.withLock { _ = domainIDs.remove(did) } }
}

private struct WeakUnit {
    weak var unit: ToyIOMMU?
}
