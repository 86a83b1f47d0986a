import IOMMUCore
import IOMMUDrivers

/// The page-table pages a VM_BIND job may need, allocated before it maps
/// (`struct msm_mmu_prealloc`): the map then takes them instead of allocating.
final class MSMPrealloc {
    var pages: [PhysicalAddress] = []
    var used = 0

    /// `msm_iommu_pagetable_prealloc_count`: a table per 512 GiB, per 1 GiB and per 2 MiB
    /// the range touches (levels 1, 2 and 3 of a 4K-granule table), over-provisioned.
    static func count(iova: IOVA, length: UInt64) -> Int {
        func tables(_ shift: UInt64) -> UInt64 {
            let size = UInt64(1) << shift
            let end = (iova.rawValue &+ length &+ size &- 1) & ~(size &- 1)
            return (end &- iova.alignedDown(to: size).rawValue) >> shift
        }
        return Int(tables(39) + tables(30) + tables(21))
    }

    /// `msm_iommu_pagetable_prealloc_allocate`.
    /// - Throws: `ENOMEM`; the pages taken so far are given back.
    init(count: Int, memory: PhysicalMemory) throws(Errno) {
        do throws(Errno) {
            for _ in 0..<count { pages.append(try memory.allocFrame()) }
        } catch {
            for p in pages { memory.freeFrame(p) }
            throw error
        }
    }

    /// `msm_iommu_pagetable_prealloc_cleanup`: the pages not used go back.
    func cleanup(_ memory: PhysicalMemory) {
        for p in pages[used...] { memory.freeFrame(p) }
        pages = []
        used = 0
    }
}

/// A process's page table (`struct msm_iommu_pagetable`): an LPAE stage-1 table shaped
/// like the GPU domain's TTBR1 table (its configuration cloned, the TTBR1 quirk cleared),
/// walked through TTBR0. Its TLB maintenance goes to the parent domain's (all tables
/// share ASID 0, so flushing the parent's ASID flushes them all); leaves are not
/// invalidated one by one (`msm_iommu_tlb_add_page` does nothing): the unmap ends with
/// a flush of the whole ASID. A VM_BIND table takes its table pages from the job's
/// preallocation.
final class MSMPagetable: IOPgtableFlushOps, PageTableAllocator, @unchecked Sendable {
    /// The table (nil once destroyed). It holds this object as its flush ops and
    /// allocator; ``destroy()`` breaks that cycle.
    private(set) var pgtable: ARMLPAEPgtable?
    /// `pagetable->ttbr`: the root's physical address.
    private(set) var ttbr: PhysicalAddress = 0
    /// `pagetable->asid`: 0 for every table.
    let asid: UInt16 = 0
    /// `pagetable->pgsize_bitmap`.
    let pgsizeBitmap: UInt64
    /// The parent domain's flush ops (`pagetable->tlb`).
    let parentTLB: (any IOPgtableFlushOps)?
    let memory: PhysicalMemory
    private let record: @Sendable (Warning) -> Void
    /// The preallocation of the VM_BIND job running, if any (`mmu->prealloc`).
    var prealloc: MSMPrealloc?

    /// The table of `msm_iommu_pagetable_create`: the TTBR1 configuration cloned with the
    /// TTBR1 quirk cleared and msm's flush ops; for a VM_BIND (user-managed) VM also
    /// `IO_PGTABLE_QUIRK_NO_WARN`, the preallocating allocator, and page-size leaves only
    /// (a later unmap of part of a block would be refused: io-pgtable-arm no longer
    /// splits blocks).
    /// - Throws: the table's `EINVAL`/`ENOMEM`.
    init(ttbr1: IOPgtableCfg, kernelManaged: Bool, memory: PhysicalMemory,
         warn: @escaping @Sendable (Warning) -> Void) throws(Errno) {
        var cfg = ttbr1
        cfg.quirks.remove(.armTTBR1)
        if !kernelManaged {
            cfg.quirks.insert(.noWarn)
            cfg.pgsizeBitmap = 4096
        }
        parentTLB = ttbr1.tlb
        self.memory = memory
        record = warn
        pgsizeBitmap = cfg.pgsizeBitmap
        cfg.tlb = self
        cfg.allocator = kernelManaged ? nil : self
        let table = try ARMLPAEPgtable(cfg, memory: memory, warn: warn)
        pgtable = table
        ttbr = table.cfg.ttbr
    }

    /// The table's configuration (for `set_ttbr0_cfg`).
    var cfg: IOPgtableCfg? { pgtable?.cfg }

    /// `free_io_pgtable_ops`: flush, free the table pages.
    func destroy() {
        pgtable?.free()
        pgtable = nil
    }

    // MARK: flush ops (msm's tlb_ops)

    /// `msm_iommu_tlb_flush_all`: the parent's flush-all.
    func tlbFlushAll() { parentTLB?.tlbFlushAll() }
    /// `msm_iommu_tlb_flush_walk`: the parent's walk flush.
    func tlbFlushWalk(iova: IOVA, size: UInt64, granule: UInt64) {
        parentTLB?.tlbFlushWalk(iova: iova, size: size, granule: granule)
    }
    /// `msm_iommu_tlb_add_page`: nothing (the unmap flushes the ASID afterwards).
    func tlbAddPage(iova: IOVA, granule: UInt64) {}

    // MARK: allocator (msm_iommu_pagetable_alloc_pt)

    /// The next preallocated page; WARN and `ENOMEM` when there is no preallocation or it
    /// is used up.
    func allocTable(bytes: Int) throws(Errno) -> PhysicalAddress {
        guard let p = prealloc, p.used < p.pages.count else {
            record(Warning(function: "msm_iommu_pagetable_alloc_pt", message: "no preallocated page-table page left"))
            throw .noMemory
        }
        let page = p.pages[p.used]
        p.used += 1
        return page
    }
}
