import IOMMUCore

/// The outcome of one pass of the page-request thread.
public struct VTdPRQPass: Hashable, Sendable {
    /// Requests read from the queue.
    public var read = 0
    /// Requests reported to the IOMMU core (`iommu_report_device_fault`).
    public var reported = 0
    /// PASID Stop Markers dropped without response.
    public var stopMarkers = 0
    /// Malformed requests or requests from an unknown RID (answered `INVALID` when they
    /// were the last of their group).
    public var rejected = 0
    /// Whether an overflow was cleared (and the iopf queue's partial requests dropped).
    public var overflowCleared = false
    /// An empty pass.
    public init() {}
}

extension IntelIOMMU {
    /// One run of the unit's page-request thread (`prq_event_thread`), driven
    /// explicitly: reads every request in the page-request queue, in order, and
    /// - answers `INVALID` (if it is the last of its group, `handle_bad_prq_event`) a
    ///   request with a non-canonical address, a privileged request asking read or
    ///   write, an execute request that also asks read, or one from a RID the driver
    ///   does not know;
    /// - drops PASID Stop Markers (`lpig && !rd && !wr`) without a response;
    /// - reports every other request to the core (`intel_prq_report` →
    ///   `iommu_report_device_fault`, event `intel_iommu:prq_report`), which groups it
    ///   and runs the domain's handler (or answers `INVALID` itself).
    /// Finally, if the queue overflowed and is now empty, the iopf queue's partial
    /// requests are discarded and the overflow flag is cleared.
    @discardableResult
    public func processPageRequests() -> VTdPRQPass {
        var pass = VTdPRQPass()
        while let req = vtd.popPageRequest() {
            pass.read += 1
            if !Self.isCanonical(req.address.rawValue) || (req.privileged && (req.read || req.write)) || (req.execute && req.read) {
                pass.rejected += 1
                badRequest(req)
                continue
            }
            if req.isStopMarker {
                pass.stopMarkers += 1
                continue
            }
            let dev: PCIDevice? = intelDriver.lock.withLock { infos[req.rid.raw]?.dev }
            guard let dev, let machine = dev.machine else {
                pass.rejected += 1
                badRequest(req)
                continue
            }
            pass.reported += 1
            let sequence = intelDriver.lock.withLock { () -> Int in
                defer { prqSequence += 1 }
                return prqSequence
            }
            machine.events.record(.prqReport(iommu: name, request: req, sequence: sequence))
            try? machine.iommu.reportDeviceFault(dev, Self.fault(from: req))
        }
        if vtd.prqOverflow && vtd.pendingPageRequests.isEmpty {
            iopfQueue.discardPartial()
            vtd.clearPRQOverflow()
            pass.overflowCleared = true
        }
        return pass
    }

    /// 48-bit canonical (bits 63..47 all equal), the x86-64 rule for a 4-level mm.
    static func isCanonical(_ address: UInt64) -> Bool {
        Int64(bitPattern: address << 16) >> 16 == Int64(bitPattern: address)
    }

    /// `intel_prq_report`: the core's view of a page-request descriptor.
    static func fault(from req: VTdPageRequest) -> IOPFFault {
        var flags: IOMMUFaultFlags = []
        if req.lastPage { flags.insert(.lastPage) }
        if req.pasidPresent { flags.insert(.responseNeedsPasid) }
        var perm: IOMMUFaultPerm = []
        if req.read { perm.insert(.read) }
        if req.write { perm.insert(.write) }
        if req.execute { perm.insert(.exec) }
        if req.privileged { perm.insert(.priv) }
        return IOPFFault(flags: flags, pasid: req.pasid, grpid: UInt32(req.groupIndex), perm: perm,
                         address: req.address.alignedDown(to: 4096))
    }

    /// `handle_bad_prq_event(iommu, req, QI_RESP_INVALID)`: a page-group response only
    /// if the request was the last of its group.
    private func badRequest(_ req: VTdPageRequest) {
        guard req.lastPage else { return }
        intelDriver.lock.withLock {
            submit([.pageGroupResponse(rid: req.rid, pasid: req.pasid,
                                       groupIndex: req.groupIndex, code: .invalid, lastPage: true)])
        }
    }

    /// `intel_iommu_page_response`: a page-group response descriptor through the
    /// invalidation queue, for the group whose last request is `evt`.
    func pageResponse(_ dev: PCIDevice, _ evt: IOPFFault, _ msg: IOMMUPageResponse) {
        let code: VTdPageResponseCode = switch msg.code {
        case .success: .success
        case .invalid: .invalid
        case .failure: .failure
        }
        intelDriver.lock.withLock {
            submit([.pageGroupResponse(rid: dev.rid, pasid: evt.pasid,
                                       groupIndex: UInt16(truncatingIfNeeded: evt.grpid & 0x1FF), code: code,
                                       lastPage: evt.isLastPage)])
        }
    }

    /// `intel_iommu_enable_iopf` for an attachment of a domain with a fault handler
    /// (`iopf_for_domain_set`): the first one puts the device on the unit's iopf queue.
    /// A device without PRI enabled cannot send page requests, so nothing is needed.
    /// Driver lock held.
    /// - Throws: `EBUSY` if the device is on another iopf queue; `ENODEV`.
    func enableIOPF(_ info: VTdDeviceInfo, for domain: IOMMUDomain) throws(Errno) {
        guard domain.iopfHandler != nil, let dev = info.dev, dev.priEnabled else { return }
        if info.iopfRefcount == 0 { try iopfQueue.addDevice(dev) }
        info.iopfRefcount += 1
    }

    /// `intel_iommu_disable_iopf` when an attachment of a domain with a fault handler
    /// goes (`iopf_for_domain_remove`): the last one removes the device from the iopf
    /// queue, answering `INVALID` to whatever is still pending. Driver lock held.
    func disableIOPF(_ info: VTdDeviceInfo, for domain: IOMMUDomain?) {
        guard let domain, domain.iopfHandler != nil, info.iopfRefcount > 0 else { return }
        info.iopfRefcount -= 1
        if info.iopfRefcount == 0, let dev = info.dev { iopfQueue.removeDevice(dev) }
    }
}
