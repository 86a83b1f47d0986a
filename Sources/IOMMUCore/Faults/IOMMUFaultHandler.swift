/// The direction of a fault reported with `report_iommu_fault` (its `flags`:
/// `IOMMU_FAULT_READ` or `IOMMU_FAULT_WRITE`).
public enum IOMMUFaultDirection: Hashable, Sendable {
    /// `IOMMU_FAULT_READ`: the faulting access read.
    case read
    /// `IOMMU_FAULT_WRITE`: the faulting access wrote.
    case write
}

/// A domain's fault handler (`iommu_fault_handler_t`): called by the IOMMU driver's
/// fault interrupt through `report_iommu_fault` with the domain, the device if the driver
/// knows it, the faulting IOVA and the direction. Returning is the kernel's 0 (handled);
/// throwing is a negative return: `EAGAIN` asks a stalling IOMMU to retry the
/// transaction, `ENOSYS` says the fault was not handled, other values terminate it. The
/// token of `iommu_set_fault_handler` is whatever the closure captures.
public typealias IOMMUFaultHandler = @Sendable (_ domain: IOMMUDomain, _ dev: PCIDevice?, _ iova: IOVA,
                                                _ direction: IOMMUFaultDirection) throws(Errno) -> Void

extension IOMMUSubsystem {
    /// `iommu_set_fault_handler(domain, handler, token)`: installs (or, with nil,
    /// removes) the handler `report_iommu_fault` calls for `domain`. GPU drivers use it to
    /// learn about context faults of the domain they own.
    public func setFaultHandler(_ domain: IOMMUDomain, _ handler: IOMMUFaultHandler?) {
        lock.withLock { domain.faultHandler = handler }
    }

    /// `report_iommu_fault(domain, dev, iova, flags)`: an IOMMU driver reports a fault on
    /// `domain` from its fault interrupt. The handler runs without the core's lock (it
    /// may call back into the IOMMU driver).
    /// - Throws: `ENOSYS` when the domain has no handler; otherwise what the handler
    ///   throws.
    public func reportIOMMUFault(_ domain: IOMMUDomain, dev: PCIDevice?, iova: IOVA,
                                 direction: IOMMUFaultDirection) throws(Errno) {
        events.record("core:report_iommu_fault", [.init("domain", "\(domain)"),
                                                  .init("dev", dev.map { "\($0.rid)" } ?? "-"),
                                                  .init("iova", "\(iova)"),
                                                  .init("flags", direction == .write ? "write" : "read")])
        guard let handler = lock.withLock({ domain.faultHandler }) else { throw .noFunction }
        try handler(domain, dev, iova, direction)
    }

    /// `iommu_set_pgtable_quirks(domain, quirks)`: page-table quirks for a domain whose
    /// driver has not made its table yet (arm-smmu: before the first attach).
    /// - Throws: `EINVAL` for a domain that is not UNMANAGED or whose driver has no
    ///   `set_pgtable_quirks`; the driver's errno (arm-smmu: `EPERM` once finalised).
    public func setPgtableQuirks(_ domain: IOMMUDomain, _ quirks: IOPageTableQuirks) throws(Errno) {
        guard domain.type == .unmanaged, domain.ops.contains(.setPgtableQuirks) else { throw .invalidArgument }
        try domain.setPgtableQuirks(quirks)
    }
}
