extension IOMMUSubsystem {
    /// `iommu_report_device_fault(dev, evt)`: an IOMMU driver reports one page request
    /// of `dev` (from its page-request thread).
    ///
    /// Routing (`find_fault_handler`): a request with a PASID goes to the attach handle
    /// at that PASID, or, when there is none and the driver hands whole PASID tables to
    /// users (`user_pasid_table`), to the RID's handle of a NESTED domain; a request
    /// without PASID goes to the handle at `IOMMU_NO_PASID`. The handle's domain must
    /// have an ``IOMMUDomain/iopfHandler``. A non-last request is kept as a partial
    /// (no response). The last request forms an ``IOPFGroup`` with the partials of the
    /// same group index and is passed to the handler, which answers it; if the handler
    /// throws, the core answers `FAILURE`.
    /// - Throws: `EINVAL` when no handle or no handler is found, or (WARN) the device is
    ///   on no iopf queue although a handler exists; the request was then answered
    ///   `INVALID` through the driver's `page_response`.
    public func reportDeviceFault(_ dev: PCIDevice, _ fault: IOPFFault) throws(Errno) {
        machine.events.record(.devFault(device: dev.rid, fault: fault))
        guard let handle = findFaultHandler(dev, fault), let domain = handle.domain,
              let handler = domain.iopfHandler else {
            faultLog.noteUnhandled()
            sendPageResponse(dev, fault, .invalid, group: nil)
            throw .invalidArgument.from("iommu_report_device_fault",
                                        "no fault handler for \(dev.rid) PASID \(fault.pasid.map { "\($0)" } ?? "-")")
        }
        guard let param = iopfParamLock.withLock({ dev.iopfParam }), let queue = param.queue else {
            warn("iommu_report_device_fault", "\(dev.rid) has a fault handler but is on no iopf queue")
            faultLog.noteUnhandled()
            sendPageResponse(dev, fault, .invalid, group: nil)
            throw .invalidArgument.from("iommu_report_device_fault", "\(dev.rid) is on no iopf queue")
        }
        faultLog.noteReported(partial: !fault.isLastPage)
        guard fault.isLastPage else {
            queue.addPartial(param, fault)
            return
        }
        let group = queue.makeGroup(param, last: fault, handle: handle, domain: domain)
        faultLog.noteGroup()
        do throws(Errno) { try handler.handleIOPF(group) } catch {
            warn("iommu_report_device_fault", "iopf with pasid \(fault.pasid.map { "\($0)" } ?? "-") aborted: \(error)")
            group.respond(.failure)
        }
    }

    /// `find_fault_handler(dev, evt)`: the attach handle a request routes to, nil if
    /// none or its domain has no fault handler.
    func findFaultHandler(_ dev: PCIDevice, _ fault: IOPFFault) -> AttachHandle? {
        guard let group = dev.group, let driver = dev.iommu?.driver else { return nil }
        var handle: AttachHandle?
        if let pasid = fault.pasid {
            handle = try? attachHandle(group, pasid: pasid)
            if handle == nil && driver.userPasidTable {
                handle = try? attachHandle(group, pasid: nil, type: .nested)
            }
        } else {
            handle = try? attachHandle(group, pasid: nil)
        }
        guard let handle, handle.domain?.iopfHandler != nil else { return nil }
        return handle
    }

    /// `iopf_queue_flush_dev(dev)`: runs the device's iopf queue until no work is left
    /// (`flush_workqueue`), so every group already reported has been handled. The IOMMU
    /// driver calls it before a PASID is released, after flushing its own hardware
    /// queue.
    /// - Throws: `ENODEV` (with a WARN) if the device is on no iopf queue.
    public func iopfQueueFlushDevice(_ dev: PCIDevice) throws(Errno) {
        guard let queue = iopfParamLock.withLock({ dev.iopfParam?.queue }) else {
            warn("iopf_queue_flush_dev", "\(dev.rid) is on no iopf queue")
            throw .noDevice.from("iopf_queue_flush_dev", "\(dev.rid) is on no iopf queue")
        }
        queue.runPending()
    }

    /// The iopf queue `dev` is on (`dev->iommu->fault_param->queue`), nil when none:
    /// the queue whose work runs the fault handlers of the device's page requests.
    public func iopfQueue(of dev: PCIDevice) -> IOPFQueue? { iopfParamLock.withLock { dev.iopfParam?.queue } }

    /// Whether `dev` is on an iopf queue (`dev->iommu->fault_param` set).
    public func hasFaultParam(_ dev: PCIDevice) -> Bool { iopfParamLock.withLock { dev.iopfParam != nil } }
}
