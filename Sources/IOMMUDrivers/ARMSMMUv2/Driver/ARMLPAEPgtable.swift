import IOMMUCore

/// The TLB maintenance an io-pgtable asks its owner for (`struct iommu_flush_ops`): the
/// owner (an SMMU domain, or a GPU driver's per-process table) decides which
/// invalidation commands they become.
public protocol IOPgtableFlushOps: AnyObject, Sendable {
    /// `tlb_flush_all`: invalidate every translation the table may have cached.
    func tlbFlushAll()
    /// `tlb_flush_walk`: a table page covering `[iova, iova + size)` is about to be freed;
    /// invalidate every cached translation of the range and wait for it.
    func tlbFlushWalk(iova: IOVA, size: UInt64, granule: UInt64)
    /// `tlb_add_page`: the leaf at `iova` (of `granule` bytes) was removed; invalidate it
    /// (or queue it) before the caller's `iotlb_sync`.
    func tlbAddPage(iova: IOVA, granule: UInt64)
}

/// The stage-1 translation-control values io-pgtable-arm computes for a table
/// (`arm_lpae_s1_cfg.tcr`): what the SMMU driver puts in TCR/TCR2.
public struct LPAETranslationControl: Hashable, Sendable {
    /// `tsz`: 64 minus the input bits.
    public var tsz: UInt64
    /// `tg`: the granule, TG0's encoding (TG1's for a TTBR1 table).
    public var tg: UInt64
    /// `ips`: the output size.
    public var ips: UInt64
    /// `sh`: shareability of the walks (3 inner shareable when coherent, 2 outer).
    public var sh: UInt64
    /// `irgn`: inner cacheability of the walks (1 write-back write-allocate, 0 none).
    public var irgn: UInt64
    /// `orgn`: outer cacheability of the walks.
    public var orgn: UInt64
}

/// `struct io_pgtable_cfg` for an ARM 64-bit LPAE stage-1 table: what the owner asks for
/// (quirks, page sizes, IAS/OAS, coherence, the flush ops) and, once the table exists,
/// what it got (`arm_lpae_s1_cfg`: TTBR, TCR fields, MAIR; the page sizes restricted to
/// the granule).
public struct IOPgtableCfg: Sendable {
    /// `quirks` (`IO_PGTABLE_QUIRK_*`).
    public var quirks: IOPageTableQuirks
    /// `pgsize_bitmap`: the page sizes allowed (restricted to one granule's by the table).
    public var pgsizeBitmap: UInt64
    /// `ias`: input address bits.
    public var ias: Int
    /// `oas`: output address bits.
    public var oas: Int
    /// `coherent_walk`: the walker snoops the CPU caches.
    public var coherentWalk: Bool
    /// `tlb`: the owner's flush ops, nil for none.
    public var tlb: (any IOPgtableFlushOps)?
    /// `alloc`/`free`: a custom allocator of table pages below the root, nil for the
    /// machine's memory.
    public var allocator: (any PageTableAllocator)?
    /// `arm_lpae_s1_cfg.ttbr`: the root table's physical address (set by the table).
    public internal(set) var ttbr: PhysicalAddress = 0
    /// `arm_lpae_s1_cfg.tcr` (set by the table).
    public internal(set) var tcr = LPAETranslationControl(tsz: 0, tg: 0, ips: 0, sh: 0, irgn: 0, orgn: 0)
    /// `arm_lpae_s1_cfg.mair` (set by the table).
    public internal(set) var mair: UInt64 = 0

    /// A configuration to allocate a table with.
    public init(quirks: IOPageTableQuirks = [], pgsizeBitmap: UInt64, ias: Int, oas: Int, coherentWalk: Bool = true,
                tlb: (any IOPgtableFlushOps)? = nil, allocator: (any PageTableAllocator)? = nil) {
        self.quirks = quirks
        self.pgsizeBitmap = pgsizeBitmap
        self.ias = ias
        self.oas = oas
        self.coherentWalk = coherentWalk
        self.tlb = tlb
        self.allocator = allocator
    }
}

/// An ARM 64-bit LPAE stage-1 io-pgtable (`alloc_io_pgtable_ops(ARM_64_LPAE_S1, cfg,
/// cookie)` and its `struct io_pgtable_ops`): the table in memory, its configuration,
/// and the TLB maintenance io-pgtable-arm asks the owner for while unmapping (a
/// `tlb_add_page` per removed leaf, a `tlb_flush_walk` before table pages are freed).
///
/// Like an io-pgtable it does not lock: the owner serialises map and unmap.
public final class ARMLPAEPgtable: @unchecked Sendable {
    /// The configuration, completed by the allocation (`ttbr`, `tcr`, `mair`, the page
    /// sizes of the chosen granule).
    public let cfg: IOPgtableCfg
    /// The table.
    public let table: IOPageTable

    /// `alloc_io_pgtable_ops(ARM_64_LPAE_S1, cfg, cookie)`.
    /// - Parameters:
    ///   - cfg: the configuration: page sizes, IAS, OAS, quirks, flush ops, allocator.
    ///   - memory: the memory the tables live in.
    ///   - warn: where the table's WARNs go (the machine's warnings).
    /// - Throws: `EINVAL` where the kernel's allocator returns NULL for the
    ///   configuration (a quirk stage 1 does not take, no usable granule, an IAS/OAS
    ///   the TCR cannot encode); `ENOMEM` if the root cannot be allocated.
    public init(_ cfg: IOPgtableCfg, memory: PhysicalMemory, warn: (@Sendable (Warning) -> Void)? = nil) throws(Errno) {
        let format = try PageTableFormat.armLPAE(.stage1, pageSizes: cfg.pgsizeBitmap, ias: cfg.ias, oas: cfg.oas,
                                                 quirks: cfg.quirks)
        table = try IOPageTable(format: format, memory: memory, allocator: cfg.allocator, warn: warn)
        var done = cfg
        guard let lpae = format.lpae else { throw .invalidArgument }
        done.pgsizeBitmap = format.pageSizes
        done.ias = lpae.ias
        done.oas = lpae.oas
        done.ttbr = table.root
        let outerOnly = cfg.quirks.contains(.armOuterWBWA)
        done.tcr = LPAETranslationControl(tsz: lpae.tsz, tg: lpae.tg, ips: lpae.ps, sh: cfg.coherentWalk ? 3 : 2,
                                          irgn: cfg.coherentWalk && !outerOnly ? 1 : 0,
                                          orgn: cfg.coherentWalk || outerOnly ? 1 : 0)
        done.mair = LPAEConfig.mair
        self.cfg = done
    }

    /// `map_pages`: maps `pgcount` pages of `pgsize`, advancing `mapped`.
    /// - Throws: the table's `EINVAL` (a size outside ``IOPgtableCfg/pgsizeBitmap``, no
    ///   read or write), `ERANGE` (an IOVA outside the table's range, a PA beyond OAS),
    ///   `EEXIST`, `ENOMEM`.
    public func mapPages(iova: IOVA, paddr: PhysicalAddress, pgsize: UInt64, pgcount: Int, prot: IOMMUProt,
                         mapped: inout UInt64) throws(Errno) {
        try table.mapPages(iova: iova, paddr: paddr, pgsize: pgsize, pgcount: pgcount, prot: prot, mapped: &mapped)
    }

    /// `unmap_pages` with a gather (nil: the kernel's NULL gather). Each removed leaf is
    /// handed to `tlb_add_page` unless the gather is queued (a flush-all follows).
    /// Table pages the unmap unlinks are followed at once by a `tlb_flush_walk` of the
    /// range, gather or not, as `__arm_lpae_unmap` does when it clears a table entry: a
    /// TLBIVAL of the leaves leaves the walk caches pointing into the old table. With a
    /// gather the pages then wait on its freelist until the caller's `iotlb_sync` (after
    /// which the caller frees them); with no gather they are freed at once.
    /// - Returns: bytes unmapped (0 at a hole or where a larger leaf would be split).
    public func unmapPages(iova: IOVA, pgsize: UInt64, pgcount: Int, gather: inout IOTLBGather?) -> UInt64 {
        var g = gather ?? IOTLBGather()
        let tablesBefore = g.freelist.count
        let n = table.unmapPages(iova: iova, pgsize: pgsize, pgcount: pgcount, gather: &g)
        if g.freelist.count > tablesBefore {
            cfg.tlb?.tlbFlushWalk(iova: iova, size: n, granule: UInt64(table.format.tableBytes))
        }
        if n > 0, !g.queued, let tlb = cfg.tlb {
            var done: UInt64 = 0
            while done < n {
                tlb.tlbAddPage(iova: iova &+ done, granule: pgsize)
                done &+= pgsize
            }
        }
        if gather == nil {
            g.releaseFreelist(to: table.memory)
        } else {
            gather = g
        }
        return n
    }

    /// `iova_to_phys`: a software walk; 0 where nothing is mapped.
    public func iovaToPhys(_ iova: IOVA) -> PhysicalAddress { table.iovaToPhys(iova) }

    /// `free_io_pgtable_ops`: `tlb_flush_all`, then every table page is freed.
    public func free() {
        guard !table.isDestroyed else { return }
        cfg.tlb?.tlbFlushAll()
        table.destroy()
    }
}
