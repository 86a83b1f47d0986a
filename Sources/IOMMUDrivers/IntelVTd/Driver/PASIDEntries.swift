import IOMMUCore

extension IntelIOMMU {
    /// `intel_pasid_setup_first_level` / `_second_level` / `_pass_through`: writes a new
    /// present entry for (`info`, `pasid`) and flushes (`pasid_flush_caches`: in caching
    /// mode a PASID-cache invalidation plus a PASID-based IOTLB (first stage,
    /// pass-through) or domain-selective IOTLB (second stage) invalidation; otherwise a
    /// write-buffer flush).
    /// - Throws: `EBUSY` if the entry is present (left unchanged, check 52); `ENODEV` if
    ///   the PASID is beyond the device's table; `ENOMEM` for a table page.
    func setupEntry(_ info: VTdDeviceInfo, pasid: UInt32, _ entry: VTdPASIDEntry) throws(Errno) {
        guard let pa = try info.entryAddress(pasid, allocate: true) else { throw .noDevice }
        if vtd.memory.load64(pa) & 1 != 0 { throw .busy }
        var e = entry
        e.present = true
        e.store(vtd.memory, pa)
        log(.pasidEntry(rid: info.rid, pasid: pasid, .setup(e.pgtt ?? .firstStage, did: e.did)))
        if caps.cachingMode {
            submit([.pasidCache(did: e.did, pasid: pasid),
                    e.pgtt == .secondStage ? .iotlbDomain(did: e.did)
                        : .piotlb(did: e.did, pasid: pasid, address: 0, npages: .max, ih: false)])
        } else {
            flushWriteBuffer()
        }
    }

    /// `intel_pasid_flush_present` after changing a present entry: PASID-cache,
    /// IOTLB for the PASID (or DID), and the device TLB.
    func flushPresent(_ info: VTdDeviceInfo, pasid: UInt32, did: UInt16, pgtt: VTdPGTT?) {
        var d: [VTdDescriptor] = [.pasidCache(did: did, pasid: pasid)]
        d.append(pgtt == .secondStage || pgtt == .nested ? .iotlbDomain(did: did)
                 : .piotlb(did: did, pasid: pasid, address: 0, npages: .max, ih: false))
        if let dev = info.dev, dev.atsEnabled, dev.isPresent {
            d.append(pasid == IOMMUSubsystem.noPasid ? .devTLB(rid: info.rid, address: 0, size: .max)
                     : .devTLBPasid(rid: info.rid, pasid: pasid, address: 0, size: .max))
        }
        submit(d)
    }

    /// `intel_pasid_tear_down_entry(iommu, dev, pasid, fault_ignore)`: clear P, then
    /// PASID-cache, IOTLB (PASID-based for FL/PT, domain-selective for SL/nested) and
    /// device-TLB invalidations, then clear the entry (FPD-only with `faultIgnore`), then
    /// drain the PRQ unless `faultIgnore`. A non-present entry with FPD (left by an mm
    /// release) is cleared and drained. The model audits the order (I10).
    func tearDown(_ info: VTdDeviceInfo, pasid: UInt32, faultIgnore: Bool) {
        guard let pa = try? info.entryAddress(pasid, allocate: false) else { return }
        let mem = vtd.memory
        let w0 = mem.load64(pa)
        if w0 & 1 == 0 {
            if w0 & 2 != 0 {
                VTdPASIDEntry().store(mem, pa)
                log(.pasidEntry(rid: info.rid, pasid: pasid, .clear))
                drainPageRequests(info, pasid: pasid)
            }
            return
        }
        let entry = VTdPASIDEntry.load(mem, pa)
        mem.store64(pa, w0 & ~1)
        log(.pasidEntry(rid: info.rid, pasid: pasid, .clearPresent))
        flushPresent(info, pasid: pasid, did: entry.did, pgtt: entry.pgtt)
        auditCachesClean(info, pasid: pasid, did: entry.did)
        if faultIgnore {
            var fpd = VTdPASIDEntry()
            fpd.fpd = true
            fpd.store(mem, pa)
            log(.pasidEntry(rid: info.rid, pasid: pasid, .fpdOnly))
        } else {
            VTdPASIDEntry().store(mem, pa)
            log(.pasidEntry(rid: info.rid, pasid: pasid, .clear))
            if !intelDriver.bugs.contains(.skipPRQDrainOnTeardown) { drainPageRequests(info, pasid: pasid) }
            auditDrained(info, pasid: pasid)
        }
    }

    /// `intel_iommu_drain_pasid_prq`: handle every queued page request of (`info`,
    /// `pasid`) (with no fault handler yet, each group is answered INVALID), then an
    /// invalidation-wait with drain. No-op for a device without PRI enabled.
    func drainPageRequests(_ info: VTdDeviceInfo, pasid: UInt32) {
        guard info.dev?.priEnabled == true else { return }
        let requests = vtd.takePageRequests(rid: info.rid, pasid: pasid)
        var d: [VTdDescriptor] = requests.filter(\.lastPage).map {
            .pageGroupResponse(rid: $0.rid, pasid: $0.pasidPresent ? $0.pasid : nil, groupIndex: $0.groupIndex,
                               code: .invalid, lastPage: true)
        }
        d.append(.wait(fence: true, drain: true))
        submit(d)
    }

    /// `device_block_translation`: tear down the RID's entry and drop its domain's tags
    /// and DID reference; the device is then blocked.
    func blockTranslation(_ info: VTdDeviceInfo) {
        tearDown(info, pasid: IOMMUSubsystem.noPasid, faultIgnore: false)
        if let old = info.ridDomain {
            old.removeAttachment(info, pasid: IOMMUSubsystem.noPasid)
            info.ridDomain = nil
        }
        info.deferredDomain = nil
    }

    /// Replaces a context entry inherited from a previous kernel by this kernel's, with
    /// global context, PASID-cache and IOTLB invalidations (its DIDs are unknown).
    func replaceCopiedContext(_ info: VTdDeviceInfo) throws(Errno) {
        guard copied[info.rid] != nil else { return }
        try info.programContext()
        submit([.contextGlobal, .pasidCacheGlobal, .iotlbGlobal])
        copied[info.rid] = nil
    }

    // MARK: I10 audits

    private func auditCachesClean(_ info: VTdDeviceInfo, pasid: UInt32, did: UInt16) {
        guard let machine = info.dev?.machine, machine.checker.isEnabled else { return }
        let stale = hardwareLock.withLock {
            vtd.pasidCacheHoldsPresent(rid: info.rid, pasid: pasid) || vtd.iotlbHolds(did: did, pasid: pasid)
        }
        if stale {
            machine.checker.report(Violation(.teardownOrder, device: info.rid, pasid: pasid, event: "pasid entry clear",
                                             message: "entry cleared while the PASID cache or IOTLB still holds (DID \(did), pasid \(pasid))"))
        }
    }

    private func auditDrained(_ info: VTdDeviceInfo, pasid: UInt32) {
        guard let machine = info.dev?.machine, machine.checker.isEnabled else { return }
        if vtd.hasPendingPageRequests(rid: info.rid, pasid: pasid) {
            machine.checker.report(Violation(.teardownOrder, device: info.rid, pasid: pasid, event: "pasid teardown",
                                             message: "teardown finished with page requests still queued (PRQ not drained)"))
        }
    }
}

extension VTdDomain {
    /// The shared attach path of every translating domain (`domain_add_dev_pasid` +
    /// `domain_setup_*` + `domain_remove_dev_pasid(old)`): DID reference and cache tags
    /// first, then (when replacing) tear the old entry down, then write the new one. On
    /// failure the new DID reference and tags are dropped again.
    /// - Throws: `ENOSPC` (no DID), `EBUSY` (entry present and nothing to replace),
    ///   `ENOMEM`, `ENODEV`.
    func install(_ info: VTdDeviceInfo, pasid: UInt32, replacing old: VTdDomain?) throws(Errno) {
        let unit = info.unit
        let did = try attachIOMMU(unit)
        assignCacheTags(unit: unit, did: did, pasid: pasid, info: info)
        do throws(Errno) {
            if old != nil { unit.tearDown(info, pasid: pasid, faultIgnore: false) }
            try unit.setupEntry(info, pasid: pasid, makeEntry(unit: unit, did: did))
        } catch {
            unassignCacheTags(unit: unit, did: did, pasid: pasid, info: info)
            detachIOMMU(unit)
            throw error
        }
        old?.removeAttachment(info, pasid: pasid)
        addAttachment(info, pasid: pasid)
    }

    /// The checks every `set_dev_pasid` makes before touching anything.
    /// - Throws: `ENODEV` unknown device; `EOPNOTSUPP` unit without PASID; `EBUSY`
    ///   copied context.
    func pasidPreconditions(_ dev: PCIDevice) throws(Errno) -> VTdDeviceInfo {
        guard let info = dev.driverPrivate as? VTdDeviceInfo else { throw .noDevice }
        guard info.unit.caps.pasid else { throw .notSupported }
        guard info.unit.copied[info.rid] == nil else { throw .busy }
        return info
    }
}
