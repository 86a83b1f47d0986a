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
        guard let pa = try info.entryAddress(pasid, allocate: true) else { throw .noDevice.from("intel_pasid_get_entry", "no PASID table entry for PASID \(pasid)") }
        if vtd.memory.load64(pa) & 1 != 0 { throw .busy.from("intel_pasid_setup", "the PASID entry of PASID \(pasid) is already present") }
        var e = entry
        e.present = true
        e.store(vtd.memory, pa)
        log(.pasidEntry(rid: info.rid, pasid: Self.pasid(ofIndex: pasid), .setup(e.pgtt ?? .firstStage, did: e.did)))
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
            d.append(pasid == IntelIOMMU.ridPasid ? .devTLB(rid: info.rid, address: 0, size: .max)
                     : .devTLBPasid(rid: info.rid, pasid: PASID(rawValue: pasid), address: 0, size: .max))
        }
        submit(d)
    }

    /// `intel_pasid_tear_down_entry(iommu, dev, pasid, fault_ignore)`: clear P, then
    /// PASID-cache, IOTLB (PASID-based for FL/PT, domain-selective for SL/nested) and
    /// device-TLB invalidations, then clear the entry (FPD-only with `faultIgnore`), then
    /// drain the PRQ unless `faultIgnore`. A non-present entry with FPD (left by an mm
    /// release) is cleared and drained. The model audits the order
    /// (``/IOMMUCore/Invariant/teardownOrder``).
    func tearDown(_ info: VTdDeviceInfo, pasid: UInt32, faultIgnore: Bool) {
        guard let pa = try? info.entryAddress(pasid, allocate: false) else { return }
        let mem = vtd.memory
        let w0 = mem.load64(pa)
        if w0 & 1 == 0 {
            if w0 & 2 != 0 {
                VTdPASIDEntry().store(mem, pa)
                log(.pasidEntry(rid: info.rid, pasid: Self.pasid(ofIndex: pasid), .clear))
                drainPageRequests(info, pasid: pasid)
            }
            return
        }
        let entry = VTdPASIDEntry.load(mem, pa)
        mem.store64(pa, w0 & ~1)
        log(.pasidEntry(rid: info.rid, pasid: Self.pasid(ofIndex: pasid), .clearPresent))
        flushPresent(info, pasid: pasid, did: entry.did, pgtt: entry.pgtt)
        auditCachesClean(info, pasid: pasid, did: entry.did)
        if faultIgnore {
            var fpd = VTdPASIDEntry()
            fpd.fpd = true
            fpd.store(mem, pa)
            log(.pasidEntry(rid: info.rid, pasid: Self.pasid(ofIndex: pasid), .fpdOnly))
        } else {
            VTdPASIDEntry().store(mem, pa)
            log(.pasidEntry(rid: info.rid, pasid: Self.pasid(ofIndex: pasid), .clear))
            if !intelDriver.bugs.contains(.skipPRQDrainOnTeardown) { drainPageRequests(info, pasid: pasid) }
            auditDrained(info, pasid: pasid)
        }
    }

    /// `intel_iommu_drain_pasid_prq`: run the page-request thread until no request of
    /// (`info`, `pasid`) is left in the hardware queue (each is reported to the core,
    /// whose handler serves it while the attach handle is still published, or is
    /// answered `INVALID`), flush the device's iopf queue (`iopf_queue_flush_dev`) so
    /// every reported group is answered, then an invalidation-wait with drain. No-op
    /// for a device without PRI enabled.
    func drainPageRequests(_ info: VTdDeviceInfo, pasid: UInt32) {
        guard let dev = info.dev, dev.priEnabled else { return }
        while vtd.hasPendingPageRequests(rid: info.rid, pasid: Self.pasid(ofIndex: pasid)) { processPageRequests() }
        if info.iopfRefcount > 0, let machine = dev.machine { try? machine.iommu.iopfQueueFlushDevice(dev) }
        submit([.wait(fence: true, drain: true)])
    }

    /// `device_block_translation`: tear down the RID's entry and drop its domain's tags
    /// and DID reference; the device is then blocked.
    func blockTranslation(_ info: VTdDeviceInfo) {
        tearDown(info, pasid: IntelIOMMU.ridPasid, faultIgnore: false)
        if let old = info.ridDomain {
            old.removeAttachment(info, pasid: IntelIOMMU.ridPasid)
            disableIOPF(info, for: old)
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

    // MARK: teardown-order audits

    private func auditCachesClean(_ info: VTdDeviceInfo, pasid: UInt32, did: UInt16) {
        guard let machine = info.dev?.machine, machine.checker.isEnabled else { return }
        let stale = hardwareLock.withLock {
            vtd.pasidCacheHoldsPresent(rid: info.rid, pasid: pasid) || vtd.iotlbHolds(did: did, pasid: pasid)
        }
        if stale {
            machine.checker.report(Violation(.teardownOrder, device: info.rid, pasid: Self.pasid(ofIndex: pasid), event: "pasid entry clear",
                                             message: "entry cleared while the PASID cache or IOTLB still holds (DID \(did), pasid \(pasid))"))
        }
    }

    private func auditDrained(_ info: VTdDeviceInfo, pasid: UInt32) {
        guard let machine = info.dev?.machine, machine.checker.isEnabled else { return }
        if vtd.hasPendingPageRequests(rid: info.rid, pasid: Self.pasid(ofIndex: pasid)) {
            machine.checker.report(Violation(.teardownOrder, device: info.rid, pasid: Self.pasid(ofIndex: pasid), event: "pasid teardown",
                                             message: "teardown finished with page requests still queued (PRQ not drained)"))
        }
    }
}

extension VTdDomain {
    /// The shared attach path of every translating domain (`domain_add_dev_pasid` +
    /// `domain_setup_*` + `domain_remove_dev_pasid(old)`): the iopf reference when the
    /// domain has a fault handler (`iopf_for_domain_set`), DID reference and cache tags,
    /// then (when replacing) tear the old entry down, then write the new one, then drop
    /// the old domain's iopf reference. On failure what was taken is dropped again.
    /// - Throws: `ENOSPC` (no DID), `EBUSY` (entry present and nothing to replace, or
    ///   the device is on another iopf queue), `ENOMEM`, `ENODEV`.
    func install(_ info: VTdDeviceInfo, pasid: UInt32, replacing old: VTdDomain?) throws(Errno) {
        let unit = info.unit
        try unit.enableIOPF(info, for: self)
        let did: UInt16
        do throws(Errno) { did = try attachIOMMU(unit) } catch {
            unit.disableIOPF(info, for: self)
            throw error
        }
        assignCacheTags(unit: unit, did: did, pasid: pasid, info: info)
        do throws(Errno) {
            if old != nil { unit.tearDown(info, pasid: pasid, faultIgnore: false) }
            try unit.setupEntry(info, pasid: pasid, makeEntry(unit: unit, did: did))
        } catch {
            unassignCacheTags(unit: unit, did: did, pasid: pasid, info: info)
            detachIOMMU(unit)
            unit.disableIOPF(info, for: self)
            throw error
        }
        old?.removeAttachment(info, pasid: pasid)
        unit.disableIOPF(info, for: old)
        addAttachment(info, pasid: pasid)
    }

    /// The checks every non-blocking `set_dev_pasid` makes before touching anything.
    /// - Throws: `ENODEV` unknown device; the errno injected with
    ///   ``IntelIOMMUDriver/failSetDevPasid(_:on:)``; `EOPNOTSUPP` unit without PASID;
    ///   `EBUSY` copied context.
    func pasidPreconditions(_ dev: PCIDevice) throws(Errno) -> VTdDeviceInfo {
        guard let info = dev.driverPrivate as? VTdDeviceInfo else { throw .noDevice.from("intel_iommu_set_dev_pasid", "\(dev.rid) was not probed by VT-d") }
        if let injected = info.failSetDevPasid { throw injected }
        guard info.unit.caps.pasid else { throw .notSupported.from("intel_iommu_set_dev_pasid", "the unit has no PASID support") }
        guard info.unit.copied[info.rid] == nil else { throw .busy.from("intel_iommu_set_dev_pasid", "the context of \(dev.rid) was copied from firmware and is still in use") }
        return info
    }
}
