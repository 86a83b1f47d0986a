import IOMMUCore

/// The toy IOMMU's hardware: it reads its device table, PASID tables and page tables
/// from the machine's physical memory, exactly as the driver wrote them, and keeps the
/// translations it walked in an IOTLB tagged by domain ID. The IOTLB is emptied only by
/// the invalidation commands the driver issues (``execute(_:)``), so a driver that
/// forgets one keeps translating through the stale entry, as real hardware would.
///
/// The machine's DMA engine holds the unit's ``IOMMUCore/IOMMUDevice/hardwareLock``
/// around ``translate(_:)``; the driver takes the same lock around ``execute(_:)``.
public final class ToyHardware: IOMMUHardware, @unchecked Sendable {
    /// The machine memory the tables live in.
    public let memory: PhysicalMemory
    /// Physical address of the device table (the "device table base" register).
    public let deviceTable: PhysicalAddress
    private let iotlb = IOTLB(entries: 256)
    private var stats = HardwareCounters()

    /// A unit whose device table (all entries invalid) is allocated in `memory`.
    /// - Throws: `ENOMEM` when the table cannot be allocated.
    public init(memory: PhysicalMemory) throws(Errno) {
        self.memory = memory
        deviceTable = try memory.allocContiguous(bytes: ToyLayout.deviceTableBytes)
    }

    /// Where the device-table entry of `rid` is (its first word; the PASID-table pointer
    /// follows).
    public func deviceEntry(_ rid: RID) -> PhysicalAddress { deviceTable + UInt64(rid.raw) * ToyLayout.deviceEntrySize }

    // MARK: invalidation

    /// An invalidation command.
    public enum Command: Hashable, Sendable {
        /// Drop the cached translations of domain `domainID` for IOVAs [first, last].
        case invalidateRange(domainID: UInt16, first: IOVA, last: IOVA)
        /// Drop every cached translation of domain `domainID`.
        case invalidateDomain(domainID: UInt16)
    }

    /// Executes an invalidation command (the caller holds the unit's hardware lock).
    public func execute(_ command: Command) {
        switch command {
        case .invalidateRange(let did, let first, let last):
            stats.invalidations["range", default: 0] += 1
            guard first <= last else { return }
            iotlb.invalidate(tag: UInt64(did), iova: first, size: first.distance(to: last) + 1)
        case .invalidateDomain(let did):
            stats.invalidations["domain", default: 0] += 1
            iotlb.invalidate(tag: UInt64(did))
        }
    }

    // MARK: IOMMUHardware

    /// The entry that governs (`rid`, `pasid`): the device table's first word, or the
    /// PASID-table entry; nil when the tables do not reach one.
    private func contextEntry(rid: RID, pasid: PASID?) -> ToyContextEntry? {
        let dte = deviceEntry(rid)
        guard let pasid else { return ToyContextEntry(raw: memory.word(at: dte)) }
        let pointer = ToyContextEntry(raw: memory.word(at: dte + 8))
        // PASID-table slot 0 is unused: the RID's own entry is in the device table.
        guard pointer.isValid, pasid.rawValue > 0, pasid.rawValue < ToyLayout.pasids else { return nil }
        return ToyContextEntry(raw: memory.word(at: pointer.tableRoot + UInt64(pasid.rawValue) * 8))
    }

    /// Translates one request: the context entry from the tables, then the IOTLB, then
    /// (on a miss) the page table, filling the IOTLB.
    public func translate(_ request: TranslationRequest) -> TranslationResult {
        stats.translations += 1
        guard let entry = contextEntry(rid: request.rid, pasid: request.pasid), entry.isValid else {
            return fault(.toyNoEntry)
        }
        let offset = request.address.offset(within: ToyLayout.pageSize)
        switch entry.mode {
        case .blocked:
            return fault(.toyBlocked)
        case .passThrough:
            return .translated(address: PhysicalAddress(identity: request.address), length: ToyLayout.pageSize - offset,
                               cached: false)
        case .translate:
            break
        }
        guard request.address.rawValue < ToyLayout.apertureSize else { return fault(.toyOutOfRange) }
        let tag = UInt64(entry.domainID)
        if let hit = iotlb.lookup(tag: tag, iova: request.address) {
            stats.iotlbHits += 1
            if let refused = refusal(hit.perms, request.access) { return fault(refused) }
            return .translated(address: hit.translate(request.address), length: ToyLayout.pageSize - offset, cached: true)
        }
        stats.iotlbMisses += 1
        stats.walks += 1
        let pte = ToyPTE(raw: memory.word(at: entry.tableRoot + (request.address.rawValue / ToyLayout.pageSize) * 8))
        guard pte.isPresent else { return fault(.toyNotMapped) }
        iotlb.insert(tag: tag, iova: request.address.alignedDown(to: ToyLayout.pageSize), pageSize: ToyLayout.pageSize,
                     pa: pte.address, perms: pte.prot)
        if let refused = refusal(pte.prot, request.access) { return fault(refused) }
        return .translated(address: pte.address + offset, length: ToyLayout.pageSize - offset, cached: false)
    }

    private func refusal(_ prot: IOMMUProt, _ access: DMAAccess) -> FaultReason? {
        if access.contains(.write) && !prot.contains(.write) { return .toyWriteProtected }
        if !access.isDisjoint(with: [.read, .execute]) && !prot.contains(.read) { return .toyReadProtected }
        return nil
    }

    private func fault(_ reason: FaultReason) -> TranslationResult {
        stats.faults += 1
        return .fault(reason)
    }

    /// Whether (`rid`, `pasid`) has a valid entry that is not blocked.
    public func hasLiveEntry(rid: RID, pasid: PASID?) -> Bool {
        guard let e = contextEntry(rid: rid, pasid: pasid) else { return false }
        return e.isValid && e.mode != .blocked
    }

    /// The toy has no page-request queue.
    public func hasPendingPageRequests(pasid: PASID?) -> Bool { false }

    /// The unit's counters.
    public var counters: HardwareCounters { stats }
}

extension FaultReason {
    /// Toy fault 1: no valid entry for the request's RID or PASID.
    public static let toyNoEntry = FaultReason(code: 1, text: "toy: no valid context entry")
    /// Toy fault 2: the entry blocks DMA.
    public static let toyBlocked = FaultReason(code: 2, text: "toy: entry is blocked")
    /// Toy fault 3: the IOVA is beyond the page table.
    public static let toyOutOfRange = FaultReason(code: 3, text: "toy: IOVA beyond the page table")
    /// Toy fault 4: the PTE is not present.
    public static let toyNotMapped = FaultReason(code: 4, text: "toy: IOVA not mapped")
    /// Toy fault 5: a write to a read-only page.
    public static let toyWriteProtected = FaultReason(code: 5, text: "toy: write to a read-only page")
    /// Toy fault 6: a read of a write-only page.
    public static let toyReadProtected = FaultReason(code: 6, text: "toy: read of a write-only page")
}
