/// The vendor-neutral IOMMU core of one machine (`drivers/iommu/iommu.c`): device probe,
/// groups, default domains, the three attach shapes, DMA ownership, map/unmap and the
/// global PASID allocator. Reached as `machine.iommu`.
///
/// Configuration calls take one recursive lock (the group mutex and `iommu_sva_lock` of
/// the kernel, folded together); the DMA path never takes it.
public final class IOMMUSubsystem: @unchecked Sendable {
    /// The machine this core runs on.
    public unowned let machine: Machine
    // The machine's constant parts used on every map and unmap, held strongly: loading
    // the unowned `machine` is a checked strong retain and release, and on the slow
    // side-table path since devices refer to the machine weakly. These are the same
    // objects the machine owns, so nothing observable changes.
    let events: EventLog
    let checker: InvariantChecker
    let memory: PhysicalMemory
    let mapCounters: MapCounters
    let lock = RecursiveLock()
    /// Entry points running on this thread under ``lock`` (they nest: SVA bind attaches a
    /// PASID); only the outermost records its failure.
    private var entryDepth = 0
    var groups: [IOMMUGroup] = []
    private var nextGroupID = 0
    /// Global PASIDs in use (`iommu_global_pasid_ida`).
    var globalPasids: Set<PASID> = []
    /// Page responses and I/O page-fault counters (`io-pgfault.c`).
    public let faultLog = IOPFLog()
    /// The default domain type for new groups (`iommu.passthrough`, `iommu.strict`).
    public var defaultDomainType: DomainType = .dma
    /// Entries a DMA-FQ flush queue holds before the DMA API forces a flush-all
    /// (`IOVA_FQ_SIZE`, 256); lower it to make the deferred flush happen sooner.
    public var dmaFlushQueueSize = IOMMUSubsystem.defaultFlushQueueSize

    init(machine: Machine) {
        self.machine = machine
        events = machine.events
        checker = machine.checker
        memory = machine.memory
        mapCounters = machine.mapCounters
    }

    /// All groups, in creation order.
    public var allGroups: [IOMMUGroup] { lock.withLock { groups } }

    func warn(_ function: String, _ message: String) {
        machine.recordWarning(Warning(function: function, message: message))
    }

    /// Records that entry point `call` failed with `error`: an `iommukit:error` event
    /// with the call, the errno's C name and the error's text (what refused and why).
    func noteFailure(_ call: String, _ error: Errno) {
        machine.events.record(.model("error", [.init("call", call), .init("errno", error.cName), .init("text", "\(error)")]))
    }

    /// Runs the body of entry point `call` under the core's lock; a failure is recorded
    /// (``noteFailure(_:_:)``) and rethrown.
    func entry<T>(_ call: String, _ body: () throws(Errno) -> T) throws(Errno) -> T {
        try lock.withLock { () throws(Errno) -> T in
            entryDepth += 1
            defer { entryDepth -= 1 }
            do throws(Errno) {
                return try body()
            } catch {
                if entryDepth == 1 { noteFailure(call, error) }
                throw error
            }
        }
    }

    /// Runs entry point `call` without the lock, recording a failure as ``entry(_:_:)``
    /// does: only when not called from within another entry point. (Taking the lock on
    /// the failure path tells: a thread inside an entry holds it with a depth above 0;
    /// any other thread gets it only once every entry has left.)
    func unlockedEntry<T>(_ call: String, _ body: () throws(Errno) -> T) throws(Errno) -> T {
        do {
            return try body()
        } catch {
            if lock.withLock({ entryDepth == 0 }) { noteFailure(call, error) }
            throw error
        }
    }

    // MARK: probe

    /// Probes `dev` behind its IOMMU (`__iommu_probe_device`): driver probe, `max_pasids`,
    /// reserved regions, group formation, and attach to the group's current domain. The
    /// group's default domain is set up here too unless `deferDefaultDomain` is set, which
    /// models the window of `bus_iommu_probe` before `iommu_setup_default_domain` runs.
    /// - Throws: the driver's probe error or the first attach's; the device is then not
    ///   managed by the IOMMU and nothing it created is left behind.
    func probe(_ dev: PCIDevice, deferDefaultDomain: Bool = false) throws(Errno) {
        guard let unit = dev.iommu else { return }
        try entry("iommu_probe_device") { () throws(Errno) in
            try unit.driver.probeDevice(dev)
            if let cap = dev.caps.pasid {
                dev.maxPasids = min(UInt32(1) << UInt32(cap.width), unit.maxPasids)
            }
            let regions = unit.driver.reservedRegions(dev)
            dev.requireDirect = regions.contains { $0.kind == .direct }
            let key = isolationKey(dev)
            let group: IOMMUGroup
            if let g = groups.first(where: { $0.isolationKey == key }) {
                group = g
            } else {
                group = IOMMUGroup(id: nextGroupID, isolationKey: key)
                nextGroupID += 1
                groups.append(group)
            }
            group.devices.append(dev)
            dev.group = group
            do throws(Errno) {
                if group.defaultDomain == nil {
                    if !deferDefaultDomain { try setupDefaultDomain(group) }
                } else if let current = group.domain {
                    if let def = group.defaultDomain, current === def { try mapDirectRegions(def, dev) }
                    try current.attachDev(dev, old: nil)
                }
            } catch {
                group.devices.removeAll { $0 === dev }
                dev.group = nil
                dev.maxPasids = 0
                if group.devices.isEmpty { groups.removeAll { $0 === group } }
                unit.driver.releaseDevice(dev)
                throw error
            }
            machine.events.record(.addDeviceToGroup(groupID: group.id, device: dev.rid))
        }
    }

    /// `iommu_setup_default_domain(group)`: allocate the default domain, identity-map every
    /// member's RESV_DIRECT regions into it, and attach the group (the first attach must
    /// succeed). A no-op when the group already has one.
    /// - Throws: the allocation or attach errno; the group is then left without a default
    ///   domain and the domain is freed.
    func setupDefaultDomain(_ group: IOMMUGroup) throws(Errno) {
        guard group.defaultDomain == nil, let first = group.devices.first else { return }
        let domain = try allocDefaultDomain(group, first)
        do throws(Errno) {
            for dev in group.devices { try mapDirectRegions(domain, dev) }
            group.defaultDomain = domain
            try setGroupDomain(group, domain)
        } catch {
            group.defaultDomain = nil
            if !isStatic(domain) { domain.free() }
            throw error
        }
    }

    /// Sets up the default domain of every group still lacking one (the second half of
    /// `bus_iommu_probe`). Groups whose setup fails keep no default domain; a WARN says so.
    func setupPendingDefaultDomains() {
        lock.withLock {
            for group in groups where group.defaultDomain == nil {
                do { try setupDefaultDomain(group) } catch {
                    warn("iommu_setup_default_domain", "\(group): \(error)")
                }
            }
        }
    }

    /// The group rule of `pci_device_group`: devices that a non-ACS bridge cannot isolate
    /// share the group of the topmost such bridge; functions of a multi-function device
    /// without ACS share their slot's group; others are alone. Units never share groups.
    private func isolationKey(_ dev: PCIDevice) -> String {
        let unit = dev.iommu.map { ObjectIdentifier($0).hashValue } ?? 0
        var bridge = dev.upstream
        var topmost: PCIBridge?
        while let b = bridge {
            if !b.acs { topmost = b }
            bridge = b.upstream
        }
        if let t = topmost { return "\(unit)/bridge/\(ObjectIdentifier(t).hashValue)" }
        if dev.multifunction && !dev.caps.acs { return "\(unit)/slot/\(dev.rid.bus)/\(dev.rid.device)" }
        return "\(unit)/dev/\(dev.rid.raw)"
    }

    /// `iommu_group_alloc_default_domain`: the driver's forced type, else the machine's.
    /// Paging default domains ask for `IOMMU_HWPT_ALLOC_PASID` when the device has PASIDs,
    /// and fall back to no flags on `EOPNOTSUPP`.
    private func allocDefaultDomain(_ group: IOMMUGroup, _ dev: PCIDevice) throws(Errno) -> IOMMUDomain {
        let driver = dev.iommu!.driver
        let type = driver.defDomainType(dev) ?? defaultDomainType
        if type == .identity {
            guard let identity = driver.identityDomain else {
                throw .noDevice.from("iommu_group_alloc_default_domain", "\(driver.name) has no identity domain")
            }
            return identity
        }
        let domain: IOMMUDomain
        do {
            domain = try driver.domainAllocPaging(dev, flags: dev.maxPasids > 0 ? [.pasid] : [], userData: nil)
        } catch .notSupported where dev.maxPasids > 0 {
            domain = try driver.domainAllocPaging(dev, flags: [], userData: nil)
        }
        domain.type = type
        return domain
    }

    /// Identity-maps the device's RESV_DIRECT regions into a DMA-API default domain.
    private func mapDirectRegions(_ domain: IOMMUDomain, _ dev: PCIDevice) throws(Errno) {
        guard domain.type.isDMAAPI, let unit = dev.iommu else { return }
        for region in unit.driver.reservedRegions(dev) where region.kind == .direct || region.kind == .directRelaxable {
            let minPage = domain.pgsizeBitmap & (~domain.pgsizeBitmap &+ 1)
            let start = region.start.alignedDown(to: minPage)
            let end = IOVA(rawValue: (region.start.rawValue + region.length + minPage - 1) & ~(minPage - 1))
            var iova = start
            while iova < end {
                if domain.iovaToPhys(iova) == 0 {
                    try map(domain, iova: iova, paddr: PhysicalAddress(identity: iova), size: minPage,
                            prot: region.prot)
                }
                iova += minPage
            }
        }
    }

    /// Releases a device (`iommu_release_device`): attaches the driver's release domain
    /// (identity instead of blocked for a device that requires direct mappings), calls
    /// `release_device`, and frees the group's domains when the last device leaves.
    /// WARNs if the device still has DMA ownership or PASIDs attached.
    public func releaseDevice(_ dev: PCIDevice) {
        lock.withLock {
            guard let group = dev.group, let unit = dev.iommu else { return }
            let driver = unit.driver
            if group.ownerCount != 0 && group.devices.count == 1 {
                warn("__iommu_group_free_device", "\(dev.rid) released while DMA ownership is held")
            }
            if var release = driver.releaseDomain {
                if release.type == .blocked && dev.requireDirect, let identity = driver.identityDomain { release = identity }
                do {
                    try release.attachDev(dev, old: group.domain)
                    machine.events.record(.attachDeviceToDomain(device: dev.rid, domain: release))
                } catch {
                    warn("iommu_deinit_device", "release domain attach failed: \(error)")
                }
            }
            driver.releaseDevice(dev)
            group.devices.removeAll { $0 === dev }
            dev.group = nil
            machine.events.record(.removeDeviceFromGroup(groupID: group.id, device: dev.rid))
            if group.devices.isEmpty {
                if let d = group.domain, d !== group.defaultDomain, d !== group.blockingDomain {
                    warn("__iommu_group_free_device", "last device left while \(d) is attached")
                }
                // The group is dismantled before its domains are freed, so freeing them
                // does not find them still attached to it.
                let owned = [group.defaultDomain, group.blockingDomain].compactMap { $0 }
                group.domain = nil
                group.defaultDomain = nil
                group.blockingDomain = nil
                groups.removeAll { $0 === group }
                for d in owned where !isStatic(d) { freeDomain(d) }
            }
        }
    }

    /// Whether `d` is one of its driver's static domains (never freed).
    func isStatic(_ d: IOMMUDomain) -> Bool {
        d === d.owner.identityDomain || d === d.owner.blockedDomain || d === d.owner.releaseDomain
    }

    // MARK: domains

    /// `iommu_paging_domain_alloc_flags(dev, flags)`: asks the device's driver for a
    /// paging (UNMANAGED) domain.
    /// - Throws: `ENODEV` if the device has no IOMMU; the driver's `EOPNOTSUPP`/`ENOMEM`.
    public func allocPagingDomain(for dev: PCIDevice, flags: DomainAllocFlags = []) throws(Errno) -> IOMMUDomain {
        try unlockedEntry("iommu_paging_domain_alloc_flags") { () throws(Errno) -> IOMMUDomain in
            guard let unit = dev.iommu, dev.group != nil else {
                throw .noDevice.from("iommu_paging_domain_alloc_flags", "\(dev.rid) has no IOMMU group")
            }
            let d = try unit.driver.domainAllocPaging(dev, flags: flags, userData: nil)
            d.type = .unmanaged
            return d
        }
    }

    /// `iommu_domain_free`: releases the domain's resources. Freeing a domain that is
    /// still attached somewhere is a caller bug, reported as a WARN; freeing it twice is
    /// a WARN that changes nothing. A freed domain is refused by map and attach
    /// (`EINVAL`, WARN).
    public func freeDomain(_ domain: IOMMUDomain) {
        lock.withLock {
            if isStatic(domain) { return }
            if domain.isFreed {
                warn("iommu_domain_free", "\(domain) freed twice")
                return
            }
            let attached = groups.contains { g in
                g.domain === domain || g.ridSlot?.domain === domain || g.pasidArray.values.contains { $0.domain === domain }
            }
            if attached { warn("iommu_domain_free", "\(domain) freed while still attached") }
            domain.isFreed = true
            domain.free()
        }
    }

    /// `iommu_get_domain_for_dev`: the RID domain of the device's group, nil without group.
    public func domainForDevice(_ dev: PCIDevice) -> IOMMUDomain? {
        lock.withLock { dev.group?.domain }
    }

    /// `iommu_driver_get_domain_for_dev`: the domain an IOMMU driver should treat as the
    /// device's RID domain: the blocking domain while the device is parked for a PCI
    /// reset, the group's domain otherwise.
    public func driverDomainForDevice(_ dev: PCIDevice) -> IOMMUDomain? {
        lock.withLock {
            guard let group = dev.group else { return nil }
            if group.isBlockedForReset(dev.rid) {
                return dev.iommu?.driver.blockedDomain ?? group.blockingDomain
            }
            return group.domain
        }
    }

    /// What the core says translates (`dev`, `pasid`), for the invariant checker
    /// (``Invariant/translationAuthority``).
    enum Authority {
        case domain(IOMMUDomain)
        case blocked
        case unknown
    }

    func authoritativeDomain(for dev: PCIDevice, pasid: PASID?) -> Authority {
        lock.withLock {
            guard let group = dev.group else { return .unknown }
            if group.isBlockedForReset(dev.rid) { return .blocked }
            guard let pasid else {
                guard let d = group.domain else { return .blocked }
                return classify(d)
            }
            if group.ridOwnsAllPasids { return .unknown }
            guard let d = group.pasidArray[pasid]?.domain else { return .blocked }
            return classify(d)
        }
    }

    /// Blocked domains must fault; nested translations depend on a user table the core
    /// cannot evaluate, so the checker skips them.
    private func classify(_ d: IOMMUDomain) -> Authority {
        d.type == .blocked ? .blocked : d.type == .nested ? .unknown : .domain(d)
    }
}
