extension DomainType {
    /// `__IOMMU_DOMAIN_KVA` of the 2021 RFC "Support in-kernel DMA with PASID and SVA":
    /// marks a domain whose translation is the kernel's own page table.
    public static let kernelVAFlag: UInt32 = 1 << 7
    /// `IOMMU_DOMAIN_KVA` (RFC, never merged): a supervisor SVA domain on `init_mm`. Not
    /// ``sva``: it has no mm and its truth is the kernel page table, which the domain's
    /// `iova_to_phys` reads.
    public static let kernelSVA = DomainType(rawValue: svaFlag | kernelVAFlag)
}

/// A vendor driver that can still build the rejected 2021 "supervisor SVA" domain: a PASID
/// whose first stage is the **kernel's own** CPU page table (`init_mm.pgd`), with
/// supervisor requests enabled. This is what `iommu_sva_bind_device(dev, NULL,
/// SVM_FLAG_SUPERVISOR_MODE)` / `intel_svm_bind_mm(..., SVM_FLAG_SUPERVISOR_MODE)` did
/// before v6.4, when idxd switched to attaching its default DMA domain to a global PASID
/// (`idxd_enable_system_pasid` with `iommu_attach_device_pasid`).
///
/// It is kept as a variant beside today's API so that its trade-off can be measured: the
/// kernel changes its page table (vmalloc, module mappings) and flushes only the CPU TLBs
/// (`flush_tlb_kernel_range` has no IOMMU hook), so the IOTLB keeps translations the kernel
/// already took away. No mainline kernel offers this op; nothing in the core calls it.
public protocol SupervisorSVADriver: IOMMUDriver {
    /// Allocates a domain whose PASID entries walk `kernelPageTable` (an x86-64 format CPU
    /// table whose kernel pages carry U/S = 0) for privileged requests. The domain has no
    /// mm notifier: nothing tells it when the kernel changes that table.
    /// - Throws: `ENODEV` for a device not behind this driver or a unit without SVM
    ///   support; `EINVAL` for a table that is not x86-64 format, or a device whose PASID
    ///   capability lacks Privileged Mode (it could never emit a supervisor request);
    ///   `EOPNOTSUPP` for a unit without PASID support.
    func domainAllocSupervisorSVA(_ dev: PCIDevice, kernelPageTable: IOPageTable) throws(Errno) -> IOMMUDomain
}
