extension IOPageTable {
    /// The error ``mapPages(iova:paddr:pgsize:pgcount:prot:mapped:)`` throws for its
    /// arguments, saying which check they failed: built out of line, only when it throws.
    @inline(never)
    func mapRefusal(_ errno: Errno, iova: UInt64, paddr: UInt64, pgsize: UInt64, pgcount: Int,
                    prot: IOMMUProt) -> Errno {
        func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
        let why: String
        if errno == .outOfRange {
            why = "\(pgcount) pages of \(hex(pgsize)) at iova \(hex(iova)) -> paddr \(hex(paddr)) leave the table's "
                + "\(format.vaBits)-bit input or \(format.outputBits)-bit output range"
        } else if destroyed {
            why = "the table was destroyed"
        } else if pgsize == 0 || pgsize & (pgsize &- 1) != 0 || format.pageSizes & pgsize == 0 {
            why = "page size \(hex(pgsize)) is not one of the format's (\(hex(format.pageSizes)))"
        } else if pgcount <= 0 {
            why = "page count \(pgcount) is not positive"
        } else if (iova | paddr) & (pgsize &- 1) != 0 {
            why = "iova \(hex(iova)) or paddr \(hex(paddr)) is not aligned to the page size \(hex(pgsize))"
        } else if pgsize.multipliedReportingOverflow(by: UInt64(pgcount)).overflow {
            why = "\(pgcount) pages of \(hex(pgsize)) overflow 64 bits"
        } else {
            why = "prot \(prot) allows neither read nor write"
        }
        return errno.from("map_pages", why)
    }

    /// `EEXIST` for a slot at `iova` already in use, built out of line.
    @inline(never)
    static func alreadyMapped(_ iova: UInt64) -> Errno {
        Errno.exists.from("map_pages", "iova 0x\(String(iova, radix: 16)) is already mapped")
    }

    /// Maps `pgcount` pages of `pgsize` bytes from `iova` to `paddr`:
    /// `io_pgtable_ops.map_pages` (`arm_lpae_map_pages`, generic_pt's `map_pages`).
    /// Missing intermediate tables are allocated; consecutive leaves in one table are
    /// written without walking again.
    ///
    /// `mapped` is advanced by the bytes mapped, also when an error stops the call part
    /// way (the core then unmaps them, as `iommu_map` does).
    ///
    /// The checks come in the kernel's order: first what the core's `iommu_map` refuses
    /// (`EINVAL`), then the format's own. x86-64 and VT-d (generic_pt) check the
    /// protection before the ranges; LPAE (io-pgtable-arm) checks the ranges first and
    /// WARNs on them.
    /// - Throws: `EINVAL` if `pgsize` is not in ``PageTableFormat/pageSizes``, `iova` or
    ///   `paddr` is not aligned to it, `pgcount` < 1, `prot` has neither read nor write,
    ///   or the table was destroyed; `ERANGE` if the IOVA range leaves the input range
    ///   (below 2^``PageTableFormat/vaBits``, or the upper range of a TTBR1 table) or
    ///   the physical range reaches 2^``PageTableFormat/outputBits`` (LPAE: the OAS);
    ///   `EEXIST` if a slot is already in use (a leaf, or for a block also a table), in
    ///   which case the existing mapping is left as it was (LPAE WARNs unless
    ///   ``IOPageTableQuirks/noWarn``); `ENOMEM` if a table page cannot be allocated.
    ///
    /// A table found where a block goes is replaced when nothing below it is mapped any
    /// more (an unmap frees only the tables it covers whole, so emptied ones stay), as
    /// generic_pt and io-pgtable-arm do; a table that still maps something refuses the
    /// block with `EEXIST`, like any overlap.
    ///
    /// Concurrency: may run on many threads at once, and with ``unmapPages(iova:pgsize:pgcount:gather:)``,
    /// on disjoint ranges of one table (the type's documentation).
    public func mapPages(iova: IOVA, paddr: PhysicalAddress, pgsize: UInt64, pgcount: Int, prot: IOMMUProt,
                         mapped: inout UInt64) throws(Errno) {
        let iova = iova.rawValue, paddr = paddr.rawValue
        switch format.layout {
        case .x86:
            try mapPages(X86Layout.self, iova: iova, paddr: paddr, pgsize: pgsize, pgcount: pgcount, prot: prot,
                         mapped: &mapped)
        case .lpae4K:
            try mapPages(LPAE4KLayout.self, iova: iova, paddr: paddr, pgsize: pgsize, pgcount: pgcount, prot: prot,
                         mapped: &mapped)
        case .lpae:
            try mapPagesGeneralLPAE(iova: iova, paddr: paddr, pgsize: pgsize, pgcount: pgcount, prot: prot,
                                     mapped: &mapped)
        }
    }

    /// `mapPages` on any other LPAE table (16K, 64K, TTBR1, concatenated), out of line
    /// so that the common layouts' copies stay the only ones in the dispatcher.
    @inline(never)
    func mapPagesGeneralLPAE(iova: UInt64, paddr: UInt64, pgsize: UInt64, pgcount: Int, prot: IOMMUProt,
                              mapped: inout UInt64) throws(Errno) {
        try mapPages(LPAELayout.self, iova: iova, paddr: paddr, pgsize: pgsize, pgcount: pgcount, prot: prot,
                     mapped: &mapped)
    }

    /// `mapPages`, for one layout. Transparent, so that the dispatcher holds each 4 KiB
    /// layout's loop inline (an always-inline generic is not always inlined twice).
    @_transparent
    func mapPages<L: PageTableLayout>(_: L.Type, iova: UInt64, paddr: UInt64, pgsize: UInt64, pgcount: Int,
                                      prot: IOMMUProt, mapped: inout UInt64) throws(Errno) {
        let format = format
        let leafLevel = L.leafLevel(format, pageSize: pgsize)
        guard leafLevel != 0 else {
            warn("arm_lpae_map_pages", "page size 0x\(String(pgsize, radix: 16)) is not in the bitmap")
            throw mapRefusal(.invalidArgument, iova: iova, paddr: paddr, pgsize: pgsize, pgcount: pgcount, prot: prot)
        }
        guard pgcount > 0, (iova | paddr) & (pgsize &- 1) == 0, !destroyed else {
            throw mapRefusal(.invalidArgument, iova: iova, paddr: paddr, pgsize: pgsize, pgcount: pgcount, prot: prot)
        }
        let total = pgsize.multipliedReportingOverflow(by: UInt64(pgcount))
        guard !total.overflow else {
            throw mapRefusal(.invalidArgument, iova: iova, paddr: paddr, pgsize: pgsize, pgcount: pgcount, prot: prot)
        }
        let readOrWrite = !prot.isDisjoint(with: [.read, .write])
        if !format.isLPAE && !readOrWrite {
            throw mapRefusal(.invalidArgument, iova: iova, paddr: paddr, pgsize: pgsize, pgcount: pgcount, prot: prot)
        }
        let lastPA = paddr.addingReportingOverflow(total.partialValue &- 1)
        guard L.inputRangeContains(format, iova: iova, size: total.partialValue), !lastPA.overflow,
              lastPA.partialValue &>> UInt64(truncatingIfNeeded: format.outputBits) == 0 else {
            warn("arm_lpae_map_pages", "iova 0x\(String(iova, radix: 16)) or paddr 0x\(String(paddr, radix: 16)) out of range")
            throw mapRefusal(.outOfRange, iova: iova, paddr: paddr, pgsize: pgsize, pgcount: pgcount, prot: prot)
        }
        guard readOrWrite else {
            throw mapRefusal(.invalidArgument, iova: iova, paddr: paddr, pgsize: pgsize, pgcount: pgcount, prot: prot)
        }

        let leafBits = leafBits(L.self, prot: prot, level: leafLevel)
        let present = format.presentMask
        let leafEntries = Int(truncatingIfNeeded: L.indexMask(format, level: leafLevel)) &+ 1
        let leafShift = L.indexShift(format, level: leafLevel)
        let leafMask = L.indexMask(format, level: leafLevel)
        var va = iova
        var pa = paddr
        var remaining = pgcount
        var done: UInt64 = 0
        defer { mapped &+= done }
        while remaining > 0 {
            // Descend to the table that holds the leaves, creating tables on the way; for
            // page-sized leaves start at the cached leaf table when it covers `va`.
            var table = rootTable
            var level = format.levels
            if leafLevel == 1, let leafTable = cachedLeafTable(L.self, va) {
                table = leafTable
                level = 1
            }
            while level > leafLevel {
                let s = slot(L.self, table, va, level: level)
                var pte = s.load()
                if pte & present == 0 { pte = try installTable(s, expected: pte) }
                if L.isBlock(format, pte) {
                    warn("__arm_lpae_map", "a leaf already maps iova 0x\(String(va, radix: 16))", quiet: true)
                    throw Self.alreadyMapped(va)
                }
                table = L.decode(format, pte)
                level &-= 1
            }
            if leafLevel == 1 { cacheLeafTable(L.self, table, for: va) }
            // Fill consecutive slots of this table: slots of this caller's range, which no
            // other caller writes, so a load and a store each.
            var index = Int(truncatingIfNeeded: (va &>> leafShift) & leafMask)
            let entries = base + Int(truncatingIfNeeded: table)
            repeat {
                let entry = PageTableEntrySlot(entries + index &* 8)
                let old = entry.load()
                if old & present != 0 && !(leafLevel > 1 && replaceEmptyTable(entry, old, level: leafLevel, iova: va)) {
                    warn("arm_lpae_init_pte", "a leaf already maps iova 0x\(String(va, radix: 16))", quiet: true)
                    throw Self.alreadyMapped(va)
                }
                entry.store(L.encode(format, pa) | leafBits)
                index &+= 1
                remaining &-= 1
                va &+= pgsize
                pa &+= pgsize
                done &+= pgsize
            } while remaining > 0 && index < leafEntries
        }
    }

    /// Where a block goes at `level`, the entry `s` holds `pte`: if it is a table below
    /// which nothing is mapped, unlinks it (a compare-and-swap) and frees it and every
    /// table below it, and returns true, so the block can be written; else returns false
    /// (a leaf, or a table still mapping something). The tables are freed at once, as
    /// io-pgtable-arm frees them after flushing the walk caches: nothing is mapped
    /// through them, and the range is the caller's. Out of line: it is rare.
    @usableFromInline @inline(never)
    func replaceEmptyTable(_ s: PageTableEntrySlot, _ pte: UInt64, level: Int, iova: UInt64) -> Bool {
        guard !format.isLeaf(pte, level: level) else { return false }
        var tables: [(table: UInt64, level: Int, iova: UInt64)] = []
        guard collectEmptyTables(format.decodeAddress(pte), level: level &- 1, iova: iova, into: &tables),
              s.compareExchange(expected: pte, desired: 0).exchanged else { return false }
        for t in tables {
            if t.level == 1 { forgetLeafTable(t.table, for: t.iova) }
            freeUnusedTable(t.table)
        }
        return true
    }

    /// Appends `table` (at `level`, mapping from `iova`) and every table below it to
    /// `tables`; returns false as soon as one holds a leaf.
    private func collectEmptyTables(_ table: UInt64, level: Int, iova: UInt64,
                                    into tables: inout [(table: UInt64, level: Int, iova: UInt64)]) -> Bool {
        let span = format.entrySpan(level: level)
        for i in 0..<format.tableEntries {
            let pte = PageTableEntrySlot(base + Int(truncatingIfNeeded: table) + i &* 8).load()
            guard pte & format.presentMask != 0 else { continue }
            let entryIOVA = iova &+ UInt64(i) &* span
            guard level > 1, !format.isLeaf(pte, level: level),
                  collectEmptyTables(format.decodeAddress(pte), level: level &- 1, iova: entryIOVA, into: &tables)
            else { return false }
        }
        tables.append((table, level, iova))
        return true
    }

    /// Maps `size` bytes choosing page sizes with ``iommuPageSize(iova:paddr:size:pageSizes:)``,
    /// as the core's `iommu_map` does over `map_pages`. All or nothing: on an error the
    /// part already mapped is unmapped again (a failed map leaves nothing mapped) and its emptied table pages
    /// freed at once, since no caller was told of the mapping.
    /// - Parameters:
    ///   - iova: the first IOVA.
    ///   - paddr: the first physical address.
    ///   - size: bytes to map.
    ///   - prot: the permissions of every leaf.
    ///   - pageSizes: leaf sizes to use, a subset of the format's; nil = all.
    /// - Returns: `size`, the bytes mapped.
    /// - Throws: `EINVAL` for a zero size, a `pageSizes` outside the format, or
    ///   `iova`/`paddr`/`size` not aligned to the smallest page; otherwise what
    ///   ``mapPages(iova:paddr:pgsize:pgcount:prot:mapped:)`` throws.
    @discardableResult
    public func map(iova: IOVA, paddr: PhysicalAddress, size: UInt64, prot: IOMMUProt,
                    pageSizes: UInt64? = nil) throws(Errno) -> UInt64 {
        let sizes = pageSizes ?? format.pageSizes
        guard size != 0 else { throw .invalidArgument.from("IOPageTable.map", "size is 0") }
        guard sizes != 0, sizes & ~format.pageSizes == 0 else {
            throw .invalidArgument.from("IOPageTable.map", "page sizes 0x\(String(sizes, radix: 16)) are not a subset of the format's 0x\(String(format.pageSizes, radix: 16))")
        }
        let minSize = UInt64(1) << UInt64(sizes.trailingZeroBitCount)
        guard (iova.rawValue | paddr.rawValue | size) & (minSize - 1) == 0 else {
            throw .invalidArgument.from("IOPageTable.map", "iova \(iova), paddr \(paddr) and size 0x\(String(size, radix: 16)) must be aligned to 0x\(String(minSize, radix: 16))")
        }
        var mapped: UInt64 = 0
        do {
            while mapped < size {
                let (pgsize, count) = iommuPageSize(iova: iova &+ mapped, paddr: paddr &+ mapped,
                                                    size: size - mapped, pageSizes: sizes)
                try mapPages(iova: iova &+ mapped, paddr: paddr &+ mapped, pgsize: pgsize, pgcount: count,
                             prot: prot, mapped: &mapped)
            }
        } catch {
            if mapped > 0 {
                var gather = IOTLBGather()
                _ = unmap(iova: iova, size: mapped, gather: &gather)
                gather.releaseFreelist(to: memory)
            }
            throw error
        }
        return size
    }
}
