/// The IOMMU state of one mm (`struct iommu_mm_data`): its PASID and its SVA domains
/// (`sva_domains`), one per compatible IOMMU driver in use.
///
/// The PASID comes from the global allocator at the first bind and stays with the mm
/// until it is torn down (`mm_pasid_drop`), whatever unbinds happen in between. Because
/// SVA domains hold the mm (`mmgrab`), the drop happens when the mm has exited *and*
/// its last SVA domain is freed, or when the last reference to the `Process` goes.
/// Guarded by the IOMMU core's lock.
final class IOMMUMMData: ProcessIOMMUData, @unchecked Sendable {
    /// `iommu_mm->pasid`.
    let pasid: PASID
    /// `iommu_mm->sva_domains`.
    var svaDomains: [IOMMUDomain] = []
    /// The core whose allocator the PASID came from.
    weak var iommu: IOMMUSubsystem?
    private var exited = false
    private(set) var dropped = false

    init(pasid: PASID, iommu: IOMMUSubsystem) {
        self.pasid = pasid
        self.iommu = iommu
    }

    /// The mm exited (`mmput` → `exit_mmap`): drop the PASID unless SVA domains still
    /// hold the mm.
    func mmExited() {
        guard let iommu else { return }
        iommu.lock.withLock {
            exited = true
            if svaDomains.isEmpty { drop() }
        }
    }

    /// An SVA domain of the mm was freed (its `mmdrop`).
    func domainFreed(_ domain: IOMMUDomain) {
        svaDomains.removeAll { $0 === domain }
        if exited && svaDomains.isEmpty { drop() }
    }

    /// The last reference to the mm went away (`__mmdrop`).
    func mmDropped() {
        guard let iommu else { return }
        iommu.lock.withLock { drop() }
    }

    /// `mm_pasid_drop`: the PASID goes back to the global allocator, once.
    private func drop() {
        guard !dropped, let iommu else { return }
        dropped = true
        iommu.freeGlobalPasid(pasid)
        iommu.machine.events.record(.model("mm_pasid_drop", pasid: pasid, [.init("pasid", "\(pasid)")]))
    }
}

extension Process {
    /// `mm_get_enqcmd_pasid(mm)`: the PASID SVA gave this mm (what ENQCMD puts in a
    /// descriptor, from the IA32_PASID MSR), or nil (the kernel's `IOMMU_PASID_INVALID`)
    /// if the mm was never bound or its PASID was dropped at teardown.
    public var enqcmdPasid: PASID? {
        let data = lock.withLock { iommuMM as? IOMMUMMData }
        guard let data, let iommu = data.iommu else { return nil }
        return iommu.lock.withLock { data.dropped ? nil : data.pasid }
    }
}
