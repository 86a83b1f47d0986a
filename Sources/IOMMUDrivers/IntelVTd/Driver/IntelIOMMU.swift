import IOMMUCore

/// One step the driver took on a unit, in order: a table-entry write, a submitted
/// invalidation descriptor or a write-buffer flush. Tests assert sequences on it
/// (checks 53, 54, 58).
public enum VTdOperation: Hashable, Sendable, CustomStringConvertible {
    /// A write to the PASID-table entry of (`rid`, `pasid`); nil: the RID_PASID entry,
    /// which translates requests without PASID.
    case pasidEntry(rid: RID, pasid: PASID?, VTdEntryWrite)
    /// A write to the context entry of `rid`.
    case contextEntry(rid: RID, present: Bool)
    /// A descriptor submitted to the invalidation queue.
    case descriptor(VTdDescriptor)
    /// A write-buffer flush (`iommu_flush_write_buffer`).
    case writeBufferFlush

    /// A short trace line.
    public var description: String {
        switch self {
        case .pasidEntry(let rid, let pasid, let w): "pasid-entry \(rid) pasid=\(pasid.map { "\($0)" } ?? "rid") \(w)"
        case .contextEntry(let rid, let p): "context-entry \(rid) present=\(p)"
        case .descriptor(let d): d.description
        case .writeBufferFlush: "write-buffer flush"
        }
    }
}

/// What a PASID-table entry write did.
public enum VTdEntryWrite: Hashable, Sendable {
    /// A new present entry with this PGTT and DID.
    case setup(VTdPGTT, did: UInt16)
    /// Only P cleared (first teardown step).
    case clearPresent
    /// The whole entry cleared.
    case clear
    /// The entry replaced by one with only FPD set (`pasid_clear_entry_with_fpd`).
    case fpdOnly
    /// A field of a present entry changed (SSADE for dirty tracking).
    case update
}

/// One VT-d remapping unit as the driver sees it (`struct intel_iommu`): its hardware,
/// root and context tables, the DID allocator (`domain_ida`), the per-device state of
/// the devices behind it and the log of what the driver did.
public final class IntelIOMMU: IOMMUDevice, @unchecked Sendable {
    /// The hardware model.
    public let vtd: VTdHardware
    /// `iommu->cap` / `iommu->ecap`.
    public var caps: VTdCapabilities { vtd.caps }
    /// The driver object shared by every unit.
    public let intelDriver: IntelIOMMUDriver
    /// Physical address of the root table.
    public let rootTable: PhysicalAddress
    /// The unit's I/O page-fault queue (`iommu->iopf_queue`, `"dmarN-iopfq"`): devices
    /// join it when a domain with a fault handler is attached to them; its work (fault
    /// handlers) runs when ``/IOMMUCore/IOPFQueue/runPending()`` is called, or inline in
    /// ``/IOMMUCore/IOPFQueue/Mode/inline`` mode.
    public let iopfQueue: IOPFQueue

    var contextTables: [Int: PhysicalAddress] = [:]
    var dids: Set<UInt16> = []
    var didOwners: [UInt16: ObjectIdentifier] = [:]
    var infos: [UInt16: VTdDeviceInfo] = [:]
    var copied: [RID: UInt16] = [:]
    /// The newest operations (a bounded log: logging sits on the map/unmap path).
    var operationLog = BoundedLog<VTdOperation>(limit: IntelIOMMU.operationLogLimit)
    /// How many operations ``operations`` keeps (the newest).
    public static let operationLogLimit = 4096
    /// `iommu->prq_seq_number`: page requests reported so far, numbering `prq_report`.
    var prqSequence = 0

    /// `FLPT_DEFAULT_DID`: the DID of first-stage-only SVA and pass-through entries.
    public static let defaultDID: UInt16 = 1
    /// `IDA_START_DID`: the first DID the allocator hands out.
    public static let firstAllocatableDID: UInt16 = 2

    /// A unit named `name` (`dmar0`) run by `driver` on `hardware`
    /// (`alloc_iommu` + `init_dmars`): allocates the root table, programs the root-table
    /// register and enables translation. `copiedContexts` models a kdump kernel that
    /// found translation enabled: each RID listed keeps a context entry of the previous
    /// kernel (pass-through at RID_PASID with the given DID, which stays reserved) until
    /// the device is attached for real.
    /// - Throws: `ENOMEM` if a table page cannot be allocated; `EINVAL` for a unit
    ///   without scalable mode (the model implements scalable mode only).
    public init(name: String, driver: IntelIOMMUDriver, hardware: VTdHardware,
                copiedContexts: [RID: UInt16] = [:]) throws(Errno) {
        guard hardware.caps.scalableMode else { throw .invalidArgument.from("intel_iommu_init", "the model implements scalable mode only") }
        vtd = hardware
        intelDriver = driver
        rootTable = try hardware.memory.allocFrame()
        iopfQueue = IOPFQueue(name: "\(name)-iopfq")
        super.init(name: name, driver: driver, hardware: hardware, maxPasids: hardware.caps.maxPasids)
        for (rid, did) in copiedContexts.sorted(by: { $0.key < $1.key }) {
            try writeCopiedContext(rid, did: did)
        }
        hardwareLock.withLock {
            vtd.setRootTable(rootTable)
            vtd.setTranslationEnabled(true)
        }
    }

    /// The operations the driver performed on this unit since creation or the last
    /// ``clearOperations()``, oldest first: the newest ``operationLogLimit`` of them.
    public var operations: [VTdOperation] { intelDriver.lock.withLock { operationLog.elements } }
    /// Forgets the operation log.
    public func clearOperations() { intelDriver.lock.withLock { operationLog.removeAll() } }

    /// The graph's view of `domain` on this unit: its DID here and its page-table root.
    public override func graphDetails(of domain: IOMMUDomain) -> [String] {
        guard let did = did(for: domain) else { return [] }
        var lines = ["DID \(did)"]
        switch domain {
        case let d as DMARDomain: lines.append("pgd \(d.pageTable.root)")
        case let d as VTdSupervisorSVADomain: lines.append("pgd \(d.kernelPageTable.root) (kernel)")
        default: break
        }
        return lines
    }

    /// DIDs currently allocated (`domain_ida`), ascending, including DIDs reserved for
    /// copied contexts.
    public var allocatedDIDs: [UInt16] { intelDriver.lock.withLock { dids.sorted() } }

    /// The DID `domain` holds on this unit (`domain_id_iommu`): 1 for SVA and identity,
    /// nil when the domain holds none here.
    public func did(for domain: IOMMUDomain) -> UInt16? {
        intelDriver.lock.withLock {
            guard let d = domain as? VTdDomain else { return nil }
            if d.usesDefaultDID { return Self.defaultDID }
            return d.iommuInfo[ObjectIdentifier(self)]?.did
        }
    }

    /// The reference count of `domain`'s DID on this unit (`iommu_domain_info.refcnt`),
    /// 0 when it holds none.
    public func didRefcount(for domain: IOMMUDomain) -> Int {
        intelDriver.lock.withLock { (domain as? VTdDomain)?.iommuInfo[ObjectIdentifier(self)]?.refcount ?? 0 }
    }

    /// Whether the context entry of `rid` is one inherited from a previous kernel.
    public func isContextCopied(_ rid: RID) -> Bool { intelDriver.lock.withLock { copied[rid] != nil } }

    /// The PASID-table entry of (`rid`, `pasid`) as it is in memory (nil `pasid`: the
    /// RID_PASID entry, for requests without PASID), nil when the tables do not reach it.
    public func pasidEntry(rid: RID, pasid: PASID?) -> VTdPASIDEntry? {
        guard let pa = vtd.pasidEntryAddress(rid: rid, pasid: pasid) else { return nil }
        return VTdPASIDEntry.load(vtd.memory, pa)
    }

    // MARK: page requests

    /// A device's Page Request Message reaches the unit: the hardware writes it into the
    /// page-request queue as a page-request descriptor (dropped, with the overflow flag
    /// set, when the queue is full). It waits there for ``servicePageRequests()``.
    /// - Returns: whether it was queued.
    public override func receivePageRequest(_ request: PageRequest) -> Bool {
        vtd.receivePageRequest(VTdPageRequest(
            rid: request.rid, pasid: request.pasid,
            read: request.access.contains(.read), write: request.access.contains(.write),
            execute: request.access.contains(.exec), privileged: request.access.contains(.priv),
            lastPage: request.isLastInGroup, groupIndex: request.groupIndex & 0x1FF,
            address: request.address.alignedDown(to: 4096)))
    }

    /// One pass of the page-request thread: ``processPageRequests()``.
    /// - Returns: the requests read from the queue.
    @discardableResult
    public override func servicePageRequests() -> Int { processPageRequests().read }

    // MARK: internal helpers (driver lock held)

    func log(_ op: VTdOperation) { operationLog.append(op) }

    /// Submits descriptors to the queue (`qi_submit_sync`) and logs them.
    func submit(_ descriptors: [VTdDescriptor]) {
        guard !descriptors.isEmpty else { return }
        let trace = events
        for d in descriptors {
            log(.descriptor(d))
            trace?.record(.qiSubmit(iommu: name, descriptor: d))
        }
        hardwareLock.withLock { vtd.submit(descriptors) }
    }

    /// `iommu_flush_write_buffer`.
    func flushWriteBuffer() {
        log(.writeBufferFlush)
        hardwareLock.withLock { vtd.flushWriteBuffer() }
    }

    /// The context table for `rid`'s half of its bus, allocated and linked on first use.
    func contextTable(for rid: RID) throws(Errno) -> PhysicalAddress {
        let key = Int(rid.bus) * 2 + (rid.devfn >= 0x80 ? 1 : 0)
        if let t = contextTables[key] { return t }
        let t = try vtd.memory.allocFrame()
        contextTables[key] = t
        let slot = VTdRootEntry.address(root: rootTable, bus: rid.bus) + (rid.devfn >= 0x80 ? 8 : 0)
        vtd.memory.store64(slot, t.rawValue | 1)
        return t
    }

    private func writeCopiedContext(_ rid: RID, did: UInt16) throws(Errno) {
        let mem = vtd.memory
        let directory = try mem.allocFrame()
        let table = try mem.allocFrame()
        mem.store64(directory, table.rawValue | VTdPASIDDirectory.present)
        var e = VTdPASIDEntry()
        e.pgtt = .passThrough
        e.did = did
        e.aw = UInt8((caps.secondStageLevels ?? 4) - 2)
        e.present = true
        e.store(mem, table)
        var c = VTdContextEntry()
        c.pasidDirectory = directory
        c.pdts = 2
        c.paside = caps.pasid
        c.present = true
        c.store(mem, VTdContextEntry.address(table: try contextTable(for: rid), devfn: rid.devfn))
        dids.insert(did)
        copied[rid] = did
    }

    // MARK: DIDs

    /// Allocates the lowest free DID in [2, ndoms - 1].
    func allocateDID(for domain: VTdDomain) -> UInt16? {
        guard caps.ndoms > Int(Self.firstAllocatableDID) else { return nil }
        var did = Self.firstAllocatableDID
        while Int(did) < caps.ndoms && dids.contains(did) { did += 1 }
        guard Int(did) < caps.ndoms else { return nil }
        dids.insert(did)
        didOwners[did] = ObjectIdentifier(domain)
        auditDID(did, event: "did alloc", what: "allocated again")
        return did
    }

    /// Returns `did` to the allocator; reports domain ID freed while in
    /// use (``/IOMMUCore/Invariant/didAccounting``) if anything still carries it.
    func releaseDID(_ did: UInt16) {
        dids.remove(did)
        didOwners[did] = nil
        auditDID(did, event: "did release", what: "released")
    }

    /// The model's domain-ID audit: a DID that is freed or handed out must not appear in a
    /// present PASID entry or in the IOTLB.
    private func auditDID(_ did: UInt16, event: String, what: String) {
        guard let machine = infos.values.first?.dev?.machine, machine.checker.isEnabled else { return }
        for info in infos.values {
            for (pasid, pa) in info.presentEntries() where VTdPASIDEntry.load(vtd.memory, pa).did == did {
                machine.checker.report(Violation(.didAccounting, device: info.rid, pasid: Self.pasid(ofIndex: pasid), event: event,
                                                 message: "DID \(did) \(what) while the PASID entry of \(info.rid) pasid \(pasid) still carries it"))
            }
        }
        if hardwareLock.withLock({ vtd.iotlbHolds(did: did) }) {
            machine.checker.report(Violation(.didAccounting, event: event,
                                             message: "DID \(did) \(what) while the IOTLB still holds translations tagged with it"))
        }
    }
}

extension IntelIOMMU {
    /// The PASID-table index of the entry that translates requests without PASID (the
    /// context entry's RID_PASID, the kernel's `IOMMU_NO_PASID`). The driver and the
    /// hardware address entries by index; the Swift API spells this one `nil`.
    static let ridPasid: UInt32 = 0

    /// The PASID a PASID-table index stands for in the Swift API: nil for ``ridPasid``.
    static func pasid(ofIndex index: UInt32) -> PASID? { index == ridPasid ? nil : PASID(rawValue: index) }
}
