import IOMMUCore

/// The mock IOMMU's hardware model. The kernel's mock has no hardware at all (its
/// "translation" is `iova_to_phys` on the xarray); the model gives it the smallest
/// hardware that still shows what a driver gets wrong:
///
/// - one programmed entry per (RID, PASID): what the mock driver's `attach_dev` and
///   `set_dev_pasid` wrote (blocked, or a reference to a domain's ``MockPageTable``);
/// - a small IOTLB (``/IOMMUCore/IOTLB``) tagged by domain serial and PASID, filled on
///   every translation and emptied only by the driver's invalidations (`iotlb_sync`,
///   `flush_iotlb_all`, PASID teardown). Between `iommu_unmap_fast` and
///   `iommu_iotlb_sync` a stale hit is therefore possible, as on real hardware.
///
/// The DMA engine holds the unit's ``/IOMMUCore/IOMMUDevice/hardwareLock`` around ``translate(_:)``;
/// the driver takes the same lock before calling the programming and invalidation
/// methods, which are not locked themselves.
public final class MockHardware: IOMMUHardware, @unchecked Sendable {
    /// What the driver programmed for one (RID, PASID).
    public enum Entry: Sendable {
        /// DMA is refused (`mock_blocking_domain`).
        case blocked
        /// Translated by a paging domain's table; `serial` tags its IOTLB entries.
        case paging(table: MockPageTable, serial: Int)
        /// A nested domain. The mock's stage 1 is only its fake IOTLB values, so DMA is
        /// translated by the stage-2 parent's table. With the driver's user PASID table
        /// on the RID, every PASID of the device is translated this way.
        case nested(parentTable: MockPageTable, parentSerial: Int)
    }

    struct Key: Hashable {
        let rid: RID
        let pasid: PASID?
    }

    /// Whether a nested RID entry owns every PASID (`iommu_ops.user_pasid_table`).
    public let userPasidTable: Bool
    private var entries: [Key: Entry] = [:]
    /// The translation cache. Mock pages are 2 KiB, below the IOTLB's 4 KiB granule, so
    /// addresses are stored doubled: a 2 KiB page at IOVA `v` becomes a 4 KiB page at
    /// `2v`, and `translate(2v) / 2` gives back the exact physical address.
    private let iotlb = IOTLB(entries: 256)
    private var stats = HardwareCounters()

    /// A mock unit; `userPasidTable` mirrors the driver's flag.
    public init(userPasidTable: Bool) { self.userPasidTable = userPasidTable }

    // MARK: programming (driver side; caller holds the unit's hardware lock)

    /// Writes the entry for (`rid`, `pasid`); a nil `pasid` is the RID's entry (requests
    /// without PASID). A nil `entry` removes it.
    public func program(rid: RID, pasid: PASID?, _ entry: Entry?) {
        entries[Key(rid: rid, pasid: pasid)] = entry
    }

    /// Removes every entry of `rid` (the device is released) and drops the IOTLB entries
    /// of the domains they referenced.
    public func forget(rid: RID) {
        for (key, entry) in entries where key.rid == rid {
            entries[key] = nil
            switch entry {
            case .paging(_, let serial), .nested(_, let serial): invalidateAll(serial: serial)
            case .blocked: break
            }
        }
    }

    /// The entry programmed for (`rid`, `pasid`), for tests and the checker.
    public func entry(rid: RID, pasid: PASID?) -> Entry? { entries[Key(rid: rid, pasid: pasid)] }

    /// The IOTLB tag of a domain serial and PASID.
    /// The IOTLB tag of a domain serial and PASID (the RID's entries use 0).
    static func tag(serial: Int, pasid: PASID?) -> UInt64 { UInt64(serial) << 21 | UInt64(pasid?.rawValue ?? 0) }

    /// Drops the cached translations of domain `serial` overlapping [`first`, `last`],
    /// for every PASID: the mock's range invalidation (`iotlb_sync`).
    public func invalidate(serial: Int, first: IOVA, last: IOVA) {
        stats.invalidations["iotlb-range", default: 0] += 1
        let lo = first.rawValue < 1 << 62 ? first.rawValue << 1 : UInt64.max
        let hi = last.rawValue < 1 << 62 ? (last.rawValue << 1) | 1 : UInt64.max
        iotlb.invalidate { tag, address, size in
            tag >> 21 == UInt64(serial) && address.rawValue <= hi && address.rawValue &+ (size - 1) >= lo
        }
    }

    /// Drops every cached translation of domain `serial` (`flush_iotlb_all`).
    public func invalidateAll(serial: Int) {
        stats.invalidations["iotlb-domain", default: 0] += 1
        iotlb.invalidate { tag, _, _ in tag >> 21 == UInt64(serial) }
    }

    /// Drops the cached translations of domain `serial` for one PASID (teardown of a
    /// (RID, PASID) entry).
    public func invalidate(serial: Int, pasid: PASID?) {
        stats.invalidations["iotlb-pasid", default: 0] += 1
        iotlb.invalidate(tag: Self.tag(serial: serial, pasid: pasid))
    }

    /// Valid IOTLB entries (for tests).
    public var cachedTranslations: Int { iotlb.count }

    // MARK: IOMMUHardware

    /// Resolves the request's entry, then serves it from the IOTLB or the table.
    public func translate(_ request: TranslationRequest) -> TranslationResult {
        stats.translations += 1
        let pasid = request.pasid
        let entry: Entry?
        if pasid != nil, userPasidTable, case .nested(let t, let s)? = entries[Key(rid: request.rid, pasid: nil)] {
            entry = .nested(parentTable: t, parentSerial: s)
        } else {
            entry = entries[Key(rid: request.rid, pasid: pasid)]
        }
        switch entry {
        case nil:
            return fault(pasid == nil ? .mockBlocked : .mockPasidNotAttached)
        case .blocked:
            return fault(.mockBlocked)
        case .paging(let table, let serial), .nested(let table, let serial):
            return lookup(table, serial: serial, pasid: pasid, request)
        }
    }

    private func lookup(_ table: MockPageTable, serial: Int, pasid: PASID?, _ r: TranslationRequest) -> TranslationResult {
        let iova = r.address.rawValue
        let offset = iova & (Mock.pageSize - 1)
        let cacheable = iova < 1 << 62
        let tag = Self.tag(serial: serial, pasid: pasid)
        if cacheable, let hit = iotlb.lookup(tag: tag, iova: IOVA(rawValue: iova << 1)) {
            stats.iotlbHits += 1
            if let refused = check(hit.perms, r.access) { return fault(refused) }
            let doubled = hit.translate(IOVA(rawValue: iova << 1)).rawValue
            return .translated(address: PhysicalAddress(rawValue: doubled >> 1), length: Mock.pageSize - offset, cached: true)
        }
        stats.iotlbMisses += 1
        stats.walks += 1
        guard let pte = table.entry(r.address) else { return fault(.mockNotMapped) }
        if cacheable {
            iotlb.insert(tag: tag, iova: IOVA(rawValue: (iova & ~(Mock.pageSize - 1)) << 1), pageSize: 4096,
                         pa: PhysicalAddress(rawValue: pte.physical.rawValue << 1), perms: pte.prot)
        }
        if let refused = check(pte.prot, r.access) { return fault(refused) }
        return .translated(address: pte.physical + offset, length: Mock.pageSize - offset, cached: false)
    }

    private func check(_ prot: IOMMUProt, _ access: DMAAccess) -> FaultReason? {
        if access.contains(.write) && !prot.contains(.write) { return .mockWriteProtected }
        if !access.isDisjoint(with: [.read, .execute]) && !prot.contains(.read) { return .mockReadProtected }
        return nil
    }

    private func fault(_ reason: FaultReason) -> TranslationResult {
        stats.faults += 1
        return .fault(reason)
    }

    /// Whether a non-blocked entry serves (`rid`, `pasid`), counting a nested RID entry
    /// as live for every PASID when the user owns the PASID table.
    public func hasLiveEntry(rid: RID, pasid: PASID?) -> Bool {
        if pasid != nil, userPasidTable, case .nested? = entries[Key(rid: rid, pasid: nil)] { return true }
        switch entries[Key(rid: rid, pasid: pasid)] {
        case nil, .blocked?: return false
        default: return true
        }
    }

    /// The mock hardware has no page-request queue.
    public func hasPendingPageRequests(pasid: PASID?) -> Bool { false }

    /// The unit's counters.
    public var counters: HardwareCounters { stats }
}
