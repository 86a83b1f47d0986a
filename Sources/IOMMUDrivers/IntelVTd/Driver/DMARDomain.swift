import IOMMUCore
import Synchronization

/// A VT-d paging domain (`struct dmar_domain` with `fspt` or `sspt`): a first-stage
/// (x86-64, preferred) or second-stage (VT-d SS) I/O page table, attachable to RIDs and
/// PASIDs of devices behind any unit it is compatible with.
public final class DMARDomain: VTdDomain, @unchecked Sendable {
    /// Which table the domain uses.
    public enum Stage: Sendable { case first, second }
    /// First or second stage.
    public let stage: Stage
    /// The I/O page table.
    public let pageTable: IOPageTable
    /// Allocated with `IOMMU_HWPT_ALLOC_NEST_PARENT` (`nested_parent`).
    public let nestParent: Bool
    /// Allocated with `IOMMU_HWPT_ALLOC_DIRTY_TRACKING`.
    public let dirtyTrackingCapable: Bool
    /// Whether SSADE is on (`dirty_tracking`).
    public private(set) var dirtyTracking = false
    /// Pages `map_pages` may still map before failing (the ``failMapAfterPages`` test
    /// hook); -1 while the hook is off.
    private let mapBudget = MapPageBudget()

    init(driver: IntelIOMMUDriver, stage: Stage, levels: Int, pgsize: UInt64, memory: PhysicalMemory,
         nestParent: Bool, dirty: Bool) throws(Errno) {
        self.stage = stage
        self.nestParent = nestParent
        dirtyTrackingCapable = dirty
        pageTable = try IOPageTable(format: stage == .first ? .x86_64(levels: levels) : .vtdSecondStage(levels: levels),
                                    memory: memory)
        var ops: DomainOps = [.paging, .iotlbSyncMap]
        if !driver.pagingDomainsSetPasid { ops.remove(.setDevPasid) }
        if dirty { ops.insert(.dirtyTracking) }
        let va = 12 + 9 * levels
        super.init(type: .unmanaged, owner: driver, ops: ops, pgsizeBitmap: pgsize,
                   geometry: DomainGeometry(apertureStart: 0, apertureEnd: IOVA(rawValue: (UInt64(1) << UInt64(va)) - 1),
                                            forceAperture: true))
    }

    override var entryKind: VTdPGTT? { stage == .first ? .firstStage : .secondStage }

    override func makeEntry(unit: IntelIOMMU, did: UInt16) -> VTdPASIDEntry {
        if stage == .first {
            return firstStageEntry(unit: unit, did: did, root: pageTable.root, levels: pageTable.format.levels)
        }
        var e = VTdPASIDEntry()
        e.pgtt = .secondStage
        e.did = did
        e.slptptr = pageTable.root
        e.aw = UInt8(pageTable.format.levels - 2)
        e.ssade = dirtyTracking
        e.pwsnp = unit.caps.coherent
        return e
    }

    /// `paging_domain_compatible`: whether `unit` can walk this domain's table.
    /// - Throws: `EINVAL` for each mismatch (no first/second stage, too few levels, a
    ///   page size the unit lacks, dirty tracking without SLADS).
    func checkCompatible(_ unit: IntelIOMMU) throws(Errno) {
        let caps = unit.caps
        switch stage {
        case .first:
            guard caps.scalableMode, caps.firstStage else { throw .invalidArgument.from("paging_domain_compatible", "a first-stage domain on a unit without scalable-mode first stage") }
            if pageTable.format.levels == 5 && !caps.firstStage5Level { throw .invalidArgument.from("paging_domain_compatible", "a 5-level first stage on a unit without 5-level paging") }
            if pgsizeBitmap & (1 << 30) != 0 && !caps.firstStage1G { throw .invalidArgument.from("paging_domain_compatible", "1 GiB first-stage pages on a unit without them") }
        case .second:
            guard caps.secondStage, caps.sagaw & (1 << UInt8(pageTable.format.levels - 2)) != 0 else { throw .invalidArgument.from("paging_domain_compatible", "the unit has no second stage of \(pageTable.format.levels) levels (SAGAW)") }
            if pgsizeBitmap & (1 << 21) != 0 && caps.secondStageLargePages & 1 == 0 { throw .invalidArgument.from("paging_domain_compatible", "2 MiB second-stage pages on a unit without them") }
            if pgsizeBitmap & (1 << 30) != 0 && caps.secondStageLargePages & 2 == 0 { throw .invalidArgument.from("paging_domain_compatible", "1 GiB second-stage pages on a unit without them") }
            if dirtyTrackingCapable && !caps.secondStageAD { throw .invalidArgument.from("paging_domain_compatible", "dirty tracking on a unit without second-stage A/D bits") }
        }
    }

    // MARK: attach

    /// `intel_iommu_attach_device`: block the RID first, check compatibility, then take
    /// a DID reference and install the PASID-0 entry. Any failure leaves the device
    /// blocked (check 59). On a context copied from a previous kernel the first attach
    /// at probe is deferred (the old translation stays), a later one replaces it.
    /// - Throws: `ENODEV` unknown device; `EINVAL` incompatible; `ENOSPC` no DID;
    ///   `ENOMEM`.
    public override func attachDev(_ dev: PCIDevice, old: IOMMUDomain?) throws(Errno) {
        try intelDriver.callback(.attachDev, self, dev, old: old) { () throws(Errno) in
            guard let info = dev.driverPrivate as? VTdDeviceInfo else { throw .noDevice.from("intel_iommu_attach_device", "\(dev.rid) was not probed by VT-d") }
            let unit = info.unit
            if unit.copied[info.rid] != nil && old == nil {
                try checkCompatible(unit)
                info.deferredDomain = self
                return
            }
            unit.blockTranslation(info)
            try checkCompatible(unit)
            try unit.replaceCopiedContext(info)
            try install(info, pasid: IntelIOMMU.ridPasid, replacing: nil)
            info.ridDomain = self
        }
    }

    /// `intel_iommu_set_dev_pasid`: program (or replace: teardown then setup) the entry
    /// of one PASID.
    /// - Throws: `EOPNOTSUPP` for a domain of a driver built without it (a test
    ///   variant); `ENODEV` unknown device; the errno injected with the
    ///   `failSetDevPasid(_:on:)` test hook; `EINVAL` non-paging domain or incompatible
    ///   unit; `EOPNOTSUPP` unit without PASID; `EBUSY` copied context or a present entry
    ///   with no `old`; `ENOSPC`/`ENOMEM`. On error the PASID keeps its old configuration.
    public override func setDevPasid(_ dev: PCIDevice, pasid: PASID, old: IOMMUDomain?) throws(Errno) {
        guard ops.contains(.setDevPasid) else { throw .notSupported.from("intel_iommu_set_dev_pasid", "this driver's paging domains have no set_dev_pasid") }
        try intelDriver.callback(.setDevPasid, self, dev, pasid: pasid, old: old) { () throws(Errno) in
            guard type.isPaging else { throw .invalidArgument.from("intel_iommu_set_dev_pasid", "\(self) is not a paging domain") }
            let info = try pasidPreconditions(dev)
            try checkCompatible(info.unit)
            try install(info, pasid: pasid.rawValue, replacing: old as? VTdDomain)
        }
    }

    // MARK: map / unmap

    /// `intel_iommu_map_pages` over the domain's page table. Nesting parents map
    /// read-only requests writeable (`ERRATA_772415_SPR17`).
    /// - Throws: the page table's `EINVAL`/`ERANGE`/`EEXIST`/`ENOMEM`; `ENOMEM` from the
    ///   `failMapAfterPages` test hook.
    public override func mapPages(iova: IOVA, paddr: PhysicalAddress, pgsize: UInt64, pgcount: Int, prot: IOMMUProt,
                                  mapped: inout UInt64) throws(Errno) {
        var p = prot
        if nestParent { p.insert(.write) }
        if mapBudget.isArmed {
            return try mapPagesWithinBudget(iova: iova, paddr: paddr, pgsize: pgsize, pgcount: pgcount, prot: p,
                                            mapped: &mapped)
        }
        try pageTable.mapPages(iova: iova, paddr: paddr, pgsize: pgsize, pgcount: pgcount, prot: p, mapped: &mapped)
    }

    /// `map_pages` while the ``failMapAfterPages`` hook is on: maps what is left of the
    /// budget, then fails with `ENOMEM` if that was less than asked. Out of line, so that
    /// the map path without the hook adds only a load and a branch to the page table call.
    @inline(never)
    private func mapPagesWithinBudget(iova: IOVA, paddr: PhysicalAddress, pgsize: UInt64, pgcount: Int,
                                      prot: IOMMUProt, mapped: inout UInt64) throws(Errno) {
        let count = mapBudget.take(pgcount)
        if count > 0 {
            try pageTable.mapPages(iova: iova, paddr: paddr, pgsize: pgsize, pgcount: count, prot: prot, mapped: &mapped)
        }
        if count < pgcount { throw .noMemory.from("intel_iommu_map_pages", "the failMapAfterPages test hook's budget is spent") }
    }

    /// Test hook (no kernel counterpart; the kernel injects faults with
    /// `iommufd_should_fail()`): once this many more pages (of the size each call maps)
    /// are mapped, `map_pages` maps no more and fails with `ENOMEM`; nil (the default)
    /// never fails. The map path pays one relaxed atomic load for it.
    package var failMapAfterPages: Int? {
        get { mapBudget.pages }
        set { mapBudget.set(newValue) }
    }

    /// `intel_iommu_unmap_pages`: unmaps and records the range in `gather`.
    public override func unmapPages(iova: IOVA, pgsize: UInt64, pgcount: Int, gather: inout IOTLBGather) -> UInt64 {
        pageTable.unmapPages(iova: iova, pgsize: pgsize, pgcount: pgcount, gather: &gather)
    }

    /// `intel_iommu_tlb_sync`: `cache_tag_flush_range` over the gathered range (first
    /// stage: PASID-based IOTLB per tag; second stage: PSI/DSI by DID; plus device TLBs).
    public override func iotlbSync(_ gather: inout IOTLBGather) {
        guard !gather.isEmpty else { return }
        intelDriver.lock.withLock {
            if intelDriver.bugs.contains(.skipIOTLBFlushOnUnmap) { return }
            flushRange(start: gather.start, end: gather.end, all: false)
        }
    }

    /// `intel_iommu_flush_iotlb_all`: `cache_tag_flush_all`.
    public override func flushIOTLBAll() {
        intelDriver.lock.withLock { flushRange(start: 0, end: .max, all: true) }
    }

    /// `intel_iommu_iotlb_sync_map`: only on a domain attached to a unit that needs it
    /// (`dmar_domain->iotlb_sync_map`): in caching mode a second-stage domain flushes the
    /// new range (`cache_tag_flush_range_np`, drops cached not-present results); a unit
    /// with `cap_rwbf` gets a write-buffer flush (`iommu_flush_write_buffer`, a no-op on
    /// units without it). Otherwise nothing: no lock, no command.
    public override func iotlbSyncMap(iova: IOVA, size: UInt64) throws(Errno) {
        guard size > 0, syncMapUnits.load(ordering: .acquiring) > 0 else { return }
        intelDriver.lock.withLock {
            // The units the domain is attached to are those its cache tags name, in
            // attach order.
            let second = stage == .second
            var cachingMode = false
            if second { forEachTaggedUnit { cachingMode = cachingMode || $0.caps.cachingMode } }
            if cachingMode { flushRange(start: iova, end: iova &+ (size - 1), all: false) }
            forEachTaggedUnit { unit in
                if !(second && unit.caps.cachingMode) && unit.caps.rwbf { unit.flushWriteBuffer() }
            }
        }
    }

    /// Whether new mappings need `iotlb_sync_map` on `unit`: `rwbf_required` (the unit
    /// has `cap_rwbf`), or a second-stage table on a caching-mode unit.
    override func needsSyncMap(on unit: IntelIOMMU) -> Bool {
        unit.caps.rwbf || (stage == .second && unit.caps.cachingMode)
    }

    /// `intel_iommu_iova_to_phys`: 0 when unmapped.
    public override func iovaToPhys(_ iova: IOVA) -> PhysicalAddress { pageTable.iovaToPhys(iova) }

    /// `intel_iommu_set_dirty_tracking`: sets or clears SSADE in every entry of the
    /// domain, flushing each present entry.
    /// - Throws: `EINVAL` for a first-stage domain or one allocated without dirty tracking.
    public override func setDirtyTracking(_ enabled: Bool) throws(Errno) {
        try intelDriver.lock.withLock { () throws(Errno) in
            guard stage == .second, dirtyTrackingCapable else { throw .invalidArgument.from("intel_iommu_set_dirty_tracking", "\(self) is not a dirty-tracking second-stage domain") }
            guard enabled != dirtyTracking else { return }
            dirtyTracking = enabled
            for a in attachments {
                guard let pa = try? a.info.entryAddress(a.pasid, allocate: false) else { continue }
                var e = VTdPASIDEntry.load(a.info.unit.vtd.memory, pa)
                guard e.present else { continue }
                e.ssade = enabled
                e.store(a.info.unit.vtd.memory, pa)
                a.info.unit.log(.pasidEntry(rid: a.info.rid, pasid: IntelIOMMU.pasid(ofIndex: a.pasid), .update))
                a.info.unit.flushPresent(a.info, pasid: a.pasid, did: e.did, pgtt: e.pgtt)
            }
        }
    }

    /// `intel_iommu_read_and_clear_dirty`: reports dirty leaves; after clearing, flushes
    /// the domain so the hardware sets D again on the next write.
    /// - Throws: `EINVAL` when dirty tracking is off or the domain cannot track.
    public override func readAndClearDirty(iova: IOVA, size: UInt64, clear: Bool,
                                           _ report: (IOVA, UInt64) -> Void) throws(Errno) {
        guard stage == .second, dirtyTrackingCapable else { throw .invalidArgument.from("intel_iommu_read_and_clear_dirty", "\(self) is not a dirty-tracking second-stage domain") }
        var any = false
        pageTable.readAndClearDirty(iova: iova, size: size, clear: clear) { a, s in
            any = true
            report(a, s)
        }
        if clear && any { intelDriver.lock.withLock { flushRange(start: iova, end: iova &+ (size - 1), all: false) } }
    }

    /// `intel_iommu_domain_free`: frees the page table.
    public override func free() { pageTable.destroy() }
}
