import IOMMUCore

/// I/O page faults in the mock driver, as the kernel mock wires them
/// (`mock_domain_page_response`, `mock_dev_enable_iopf`, `mock_dev_disable_iopf`): a
/// device joins the driver's iopf queue when the first domain with a fault handler is
/// attached to its RID or one of its PASIDs, and leaves it (its pending groups answered
/// `INVALID` by the core) when the last one goes. The mock hardware has no page-request
/// queue, so faults reach the core only through `iommu_report_device_fault` calls such
/// as `IOMMU_TEST_OP_TRIGGER_IOPF`.
extension MockIOMMUDriver {
    /// `mock_domain_page_response`: the mock device has nowhere to deliver a response, so
    /// the op does nothing; having it is what lets mock devices join an iopf queue. The
    /// core's ``/IOMMUCore/IOPFLog`` records every response sent through it. Nil for a
    /// driver built with `iopf: false`.
    public var pageResponse: IOMMUPageResponseOp? {
        guard iopfQueue != nil else { return nil }
        let op: IOMMUPageResponseOp = { _, _, _ in }
        return op
    }

    /// `mock_dev_enable_iopf(dev, domain)`: one more fault-capable attachment of `dev`;
    /// the first puts the device on ``iopfQueue``. Nothing happens for a domain without
    /// a fault handler (or none).
    /// - Throws: `ENODEV` if the driver has no iopf queue; `EBUSY` if the device is on
    ///   another driver's queue (`iopf_queue_add_device`). Nothing changes on error.
    func enableIOPF(_ dev: PCIDevice, for domain: IOMMUDomain?) throws(Errno) {
        guard let domain, domain.iopfHandler != nil else { return }
        guard let queue = iopfQueue, let state = dev.driverPrivate as? MockDeviceState else { throw .noDevice.from("mock_dev_enable_iopf", "no iopf queue, or \(dev.rid) was not probed by the mock driver") }
        if state.iopfRefcount == 0 { try queue.addDevice(dev) }
        state.iopfRefcount += 1
    }

    /// `mock_dev_disable_iopf(dev, domain)`: one fault-capable attachment fewer; the last
    /// removes the device from ``iopfQueue`` (`iopf_queue_remove_device`, which answers
    /// `INVALID` to every group still pending).
    func disableIOPF(_ dev: PCIDevice, for domain: IOMMUDomain?) {
        guard let domain, domain.iopfHandler != nil, let queue = iopfQueue,
              let state = dev.driverPrivate as? MockDeviceState, state.iopfRefcount > 0 else { return }
        state.iopfRefcount -= 1
        if state.iopfRefcount == 0 { queue.removeDevice(dev) }
    }

    /// The IOPF part of `mock_domain_nop_attach`: enable for `domain` first, so a failure
    /// leaves everything as it was, then disable for the RID's previous domain
    /// (`mdev->domain`, which the driver tracks itself rather than trusting `old`).
    /// - Throws: as ``enableIOPF(_:for:)``.
    func switchRIDIOPF(_ dev: PCIDevice, to domain: IOMMUDomain) throws(Errno) {
        try enableIOPF(dev, for: domain)
        let state = dev.driverPrivate as? MockDeviceState
        disableIOPF(dev, for: state?.ridDomain)
        state?.ridDomain = domain
    }

    /// The IOPF part of `mock_domain_set_dev_pasid_nop`: enable for `domain`, then
    /// disable for `old`, the domain the PASID leaves.
    /// - Throws: as ``enableIOPF(_:for:)``.
    func switchPasidIOPF(_ dev: PCIDevice, to domain: IOMMUDomain, old: IOMMUDomain?) throws(Errno) {
        try enableIOPF(dev, for: domain)
        disableIOPF(dev, for: old)
    }
}
