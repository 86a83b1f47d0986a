import IOMMUCore

extension ArmSMMUv3 {
    /// One run of the event-queue thread (`arm_smmu_evtq_thread`): reads every record and
    /// handles it (`arm_smmu_handle_event`). A stall record becomes a one-request page
    /// fault (LAST_PAGE, group index = STAG, the PASID when SSV) reported to the IOMMU core
    /// (`iommu_report_device_fault`), which runs the domain's handler and answers through
    /// `arm_smmu_page_response`, that is, a RESUME. Other records are kept in
    /// ``unhandledEvents`` (the kernel prints them). An overflow is counted.
    /// - Returns: the records read.
    @discardableResult
    public func processEventQueue() -> Int {
        let (events, overflowed) = smmu.drainEventQueue()
        if overflowed {
            smmuDriver.lock.withLock { queueOverflows += 1 }
            warn(nil, "arm_smmu_evtq_thread", "EVTQ overflow detected -- events lost")
        }
        for e in events where !handle(e) {
            smmuDriver.lock.withLock { unhandledEvents.append(e) }
            machine?.events.record(.model("smmu_event", device: device(streamID: e.streamID),
                                          pasid: e.substreamID.map(PASID.init(rawValue:)),
                                          [.init("smmu", name), .init("event", e.description)]))
        }
        return events.count
    }

    /// The device of a StreamID, for trace filters.
    private func device(streamID: UInt32) -> RID? { smmuDriver.lock.withLock { masters[streamID]?.rid } }

    /// `arm_smmu_handle_event`: true when the record was consumed (reported as a page
    /// fault).
    private func handle(_ e: SMMUv3Event) -> Bool {
        guard e.id != nil, e.stalled else { return false }
        var perm: IOMMUFaultPerm = e.read ? .read : .write
        if e.instruction { perm.insert(.exec) }
        if e.privileged { perm.insert(.priv) }
        let fault = IOPFFault(flags: [.lastPage], pasid: e.substreamID.map(PASID.init(rawValue:)), grpid: UInt32(e.stallTag), perm: perm,
                              address: e.address)
        let dev: PCIDevice? = smmuDriver.lock.withLock { masters[e.streamID]?.dev }
        guard let dev, let machine = dev.machine else { return false }
        machine.events.record(.model("smmu_stall_fault", device: dev.rid, pasid: fault.pasid,
                                     [.init("smmu", name), .init("stag", "\(e.stallTag)"),
                                      .init("addr", "\(e.address)")]))
        do {
            try machine.iommu.reportDeviceFault(dev, fault)
            return true
        } catch {
            // The core answered the group itself (a RESUME with abort went out).
            return true
        }
    }

    /// One run of the PRI-queue thread (`arm_smmu_priq_thread`): reads every record and
    /// handles it (`arm_smmu_handle_ppr`). An overflow is reported, and the partial
    /// groups already gathered are dropped (the SMMU may have lost their last request).
    /// - Returns: the records read.
    @discardableResult
    public func processPRIQueue() -> Int {
        let (entries, overflowed) = smmu.drainPRIQueue()
        for e in entries { handlePPR(e) }
        if overflowed {
            warn(nil, "arm_smmu_priq_thread", "PRIQ overflow detected -- requests lost")
            priIOPFQueue?.discardPartial()
        }
        return entries.count
    }

    /// `arm_smmu_handle_ppr` (the PRI series): a PCIe page request becomes a page fault
    /// reported to the IOMMU core (`iommu_report_device_fault`), which gathers its group,
    /// runs the domain's handler and answers through `arm_smmu_page_response` (PRI_RESP),
    /// or answers `INVALID` itself when no handler takes it. A PASID stop marker (last,
    /// neither read nor write) is dropped. A request from a StreamID without a master
    /// WARNs and is dropped.
    private func handlePPR(_ e: SMMUv3PRIEntry) {
        let access = e.access
        if e.last && !access.contains(.read) && !access.contains(.write) { return }
        let found: (PCIDevice, Bool)? = smmuDriver.lock.withLock {
            guard let m = masters[e.streamID], let dev = m.dev else { return nil }
            return (dev, m.prgResponseNeedsSSID)
        }
        guard let (dev, needsSSID) = found, let machine = dev.machine else {
            warn(nil, "arm_smmu_handle_ppr", "page request from unknown StreamID 0x" + String(e.streamID, radix: 16))
            return
        }
        var flags: IOMMUFaultFlags = e.last ? [.lastPage] : []
        if e.substreamID != nil && needsSSID { flags.insert(.responseNeedsPasid) }
        let fault = IOPFFault(flags: flags, pasid: e.substreamID.map(PASID.init(rawValue:)), grpid: UInt32(e.groupIndex), perm: access,
                              address: e.address)
        machine.events.record(.model("smmu_ppr", device: dev.rid, pasid: fault.pasid,
                                     [.init("smmu", name), .init("request", e.description)]))
        // On failure the core has answered the group (INVALID) itself.
        try? machine.iommu.reportDeviceFault(dev, fault)
    }

    /// `arm_smmu_page_response`: a stalling master's group is its stalled transaction,
    /// RESUMEd (retry on success, abort otherwise); a PRI master's group gets PRI_RESP
    /// (the PRI series: failure → DENY, invalid → FAIL, success → SUCC), with the PASID
    /// when the request had one and the device needs it. No CMD_SYNC. WARNs for a device
    /// that neither stalls nor has PRI.
    func pageResponse(_ dev: PCIDevice, _ evt: IOPFFault, _ msg: IOMMUPageResponse) {
        smmuDriver.lock.withLock {
            guard let master = dev.driverPrivate as? SMMUv3Master, master.stallEnabled || master.priSupported else {
                warn(dev, "arm_smmu_page_response", "page response for \(dev.rid), which neither stalls nor has PRI")
                return
            }
            if master.stallEnabled {
                let action: SMMUv3Command.ResumeAction = msg.code == .success ? .retry : .abort
                issue([.resume(sid: master.streams[0], stallTag: UInt16(truncatingIfNeeded: msg.grpid), action: action)],
                      sync: false)
                return
            }
            let response: SMMUv3Command.PRIResponse = switch msg.code {
            case .failure: .deny
            case .invalid: .fail
            case .success: .success
            }
            let ssid = master.prgResponseNeedsSSID ? evt.pasid?.rawValue : nil
            issue([.priResponse(sid: master.streams[0], ssid: ssid ?? 0, ssv: ssid != nil,
                                groupIndex: UInt16(truncatingIfNeeded: msg.grpid & 0x1FF), response: response)],
                  sync: false)
        }
    }

    /// `arm_smmu_flush_priq` (the PRI series' iopf flush) for `master`: runs the PRI-queue
    /// thread until no request of its StreamIDs is left in the queue, then the device's
    /// iopf queue (`iopf_queue_flush_dev`), so every request it sent before is answered.
    func flushPRIQueue(_ master: SMMUv3Master) {
        let sids = Set(master.streams)
        while smmu.pendingPRIEntries.contains(where: { sids.contains($0.streamID) }) { processPRIQueue() }
        if let dev = master.dev, let machine = dev.machine, machine.iommu.hasFaultParam(dev) {
            try? machine.iommu.iopfQueueFlushDevice(dev)
        }
    }
}

/// `arm_smmu_init_pri` (the PRI series): a PCI function with PRI behind an SMMU with a PRI
/// queue can send page requests once PRI is enabled; a PASID-capable one needs the PASID
/// in its responses. Driver lock held.
func initPRI(_ master: SMMUv3Master) {
    guard master.unit.features.contains(.pri), master.dev?.caps.pri == true else { return }
    master.prgResponseNeedsSSID = master.ssidBits > 0
    master.priSupported = true
}

/// `arm_smmu_enable_pri`: PRI on, right after ATS (a page request is an ATS-translated
/// access retried). Driver lock held.
func enablePRI(_ master: SMMUv3Master) {
    guard master.priSupported, let dev = master.dev, dev.atsEnabled else { return }
    dev.priEnabled = true
}

/// `arm_smmu_disable_pri`: PRI off, before ATS goes. Requests already in the PRI queue
/// are still handled. Driver lock held.
func disablePRI(_ master: SMMUv3Master) {
    master.dev?.priEnabled = false
}

/// `arm_smmu_enable_iopf`: a domain with a fault handler attached to a stalling master
/// puts it on the unit's iopf queue, to a PRI master on the PRI fault queue (first user);
/// other masters need nothing (their drivers handle faults themselves). Driver lock held.
/// - Throws: `EOPNOTSUPP` for a master with more than one StreamID (fault records name
///   one) or a unit without the queue; the queue's errno.
func enableIOPF(_ master: SMMUv3Master, _ md: SMMUv3MasterDomain) throws(Errno) {
    guard master.stallEnabled || master.priSupported else { return }
    let queue = master.stallEnabled ? master.unit.iopfQueue : master.unit.priIOPFQueue
    guard master.streams.count == 1, let queue, let dev = master.dev else { throw .notSupported }
    if master.iopfRefcount == 0 { try queue.addDevice(dev) }
    master.iopfRefcount += 1
    md.usingIOPF = true
}

/// `arm_smmu_disable_iopf`: a PRI master's outstanding requests are answered first
/// (`arm_smmu_flush_priq`: the domain's handler still serves them); the last
/// user takes the master off its queue, which answers whatever is still pending. Driver
/// lock held.
func disableIOPF(_ master: SMMUv3Master, _ md: SMMUv3MasterDomain?) {
    guard let md, md.usingIOPF, master.iopfRefcount > 0 else { return }
    if master.priSupported && !master.stallEnabled { master.unit.flushPRIQueue(master) }
    master.iopfRefcount -= 1
    guard master.iopfRefcount == 0, let dev = master.dev else { return }
    (master.stallEnabled ? master.unit.iopfQueue : master.unit.priIOPFQueue)?.removeDevice(dev)
}
