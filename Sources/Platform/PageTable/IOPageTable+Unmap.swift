extension IOPageTable {
    /// Unmaps `pgcount` pages of `pgsize` bytes from `iova`: `io_pgtable_ops.unmap_pages`
    /// (`arm_lpae_unmap_pages`, generic_pt's `unmap_pages`).
    ///
    /// Removes whole leaves only: a leaf reaching outside the range is never split
    /// (io-pgtable-arm refuses an unmap of part of a block since split-on-unmap was
    /// removed, and WARNs), so a page inside a block unmaps nothing. Stops at the first
    /// hole (LPAE WARNs there unless ``IOPageTableQuirks/noWarn``). A table page whose
    /// whole span the unmap cleared is unlinked and put on `gather.freelist`, to be freed
    /// after the IOTLB flush, as generic_pt frees a table "fully covered" by the range
    /// and io-pgtable-arm a table its unmap removes whole; a table that merely became
    /// empty stays, since another caller may be mapping into it. Each removed leaf is
    /// added to the gather's range.
    ///
    /// Concurrency: may run on many threads at once, and with ``mapPages(iova:paddr:pgsize:pgcount:prot:mapped:)``,
    /// on disjoint ranges of one table (the type's documentation).
    /// - Returns: bytes unmapped (never an errno, like the kernel's `size_t`); 0 for a
    ///   `pgsize` outside the format, a misaligned `iova`, `pgcount` < 1 or a range
    ///   outside the input range (LPAE WARNs for all but the misalignment, which the
    ///   core's `iommu_unmap` refuses before the page table sees it).
    ///
    /// Inlinable: a caller passing a constant `pgsize` and `pgcount` (one 4 KiB page, the
    /// usual DMA unmap) gets the checks folded down and the per-leaf loop inline; the
    /// walk from the root and the release of empty tables stay out of line.
    @inlinable
    public func unmapPages(iova: IOVA, pgsize: UInt64, pgcount: Int, gather: inout IOTLBGather) -> UInt64 {
        let iova = iova.rawValue
        switch format.layout {
        case .x86: return unmapPages(X86Layout.self, iova: iova, pgsize: pgsize, pgcount: pgcount, gather: &gather)
        case .lpae4K: return unmapPages(LPAE4KLayout.self, iova: iova, pgsize: pgsize, pgcount: pgcount, gather: &gather)
        case .lpae: return unmapPages(LPAELayout.self, iova: iova, pgsize: pgsize, pgcount: pgcount, gather: &gather)
        }
    }

    /// `unmapPages`, for one layout.
    @inlinable @inline(__always)
    func unmapPages<L: PageTableLayout>(_: L.Type, iova: UInt64, pgsize: UInt64, pgcount: Int,
                                        gather: inout IOTLBGather) -> UInt64 {
        guard L.leafLevel(format, pageSize: pgsize) != 0, pgcount > 0 else {
            return refuseUnmap(pgsize: pgsize, pgcount: pgcount)
        }
        let total = pgsize.multipliedReportingOverflow(by: UInt64(pgcount))
        guard iova & (pgsize &- 1) == 0, !total.overflow else { return 0 }
        return unmapLeaves(L.self, iova: iova, size: total.partialValue, gather: &gather)
    }

    /// Unmaps `size` bytes from `iova` leaf by leaf, whatever leaf sizes are there, so
    /// one call can remove several earlier maps: the core's `iommu_unmap` loop over
    /// `unmap_pages`. Stops at the first hole.
    /// - Returns: bytes unmapped; 0 if `iova` is unmapped, if the first leaf would be
    ///   split, or if `iova`/`size` are not aligned to the format's page size.
    public func unmap(iova: IOVA, size: UInt64, gather: inout IOTLBGather) -> UInt64 {
        let iova = iova.rawValue
        let page = UInt64(format.tableBytes)
        guard (iova | size) & (page &- 1) == 0 else { return 0 }
        switch format.layout {
        case .x86: return unmapLeaves(X86Layout.self, iova: iova, size: size, gather: &gather)
        case .lpae4K: return unmapLeaves(LPAE4KLayout.self, iova: iova, size: size, gather: &gather)
        case .lpae: return unmapLeaves(LPAELayout.self, iova: iova, size: size, gather: &gather)
        }
    }

    /// The engine of both unmaps. Inlinable with ``unmapPages(iova:pgsize:pgcount:gather:)``
    /// so that a per-page unmap costs no call; its slow paths are out of line.
    @inlinable @inline(__always)
    func unmapLeaves<L: PageTableLayout>(_: L.Type, iova: UInt64, size: UInt64, gather: inout IOTLBGather) -> UInt64 {
        guard !destroyed, size != 0 else { return 0 }
        guard L.inputRangeContains(format, iova: iova, size: size) else { return refuseUnmap(outside: iova) }
        let present = format.presentMask
        let leafTableSpan = L.entrySpan(format, level: 2)
        var cursor = iova
        var left = size
        while left > 0 {
            // The table holding the cursor's leaf (or hole): the cached leaf table when it
            // covers the cursor, else a walk from the root, kept out of line so that this
            // loop stays small enough for the per-page case.
            var table: UInt64
            var level: Int
            if let leafTable = cachedLeafTable(L.self, cursor) {
                table = leafTable
                level = 1
            } else {
                (table, level) = findLeafTable(cursor)
            }
            let s = slot(L.self, table, cursor, level: level)
            if s.load() & present == 0 {
                warnUnmapHole(at: cursor)
                break
            }
            let span = L.entrySpan(format, level: level)
            // A leaf that starts before the cursor or ends past the range would be split.
            guard cursor & (span &- 1) == 0, span <= left else {
                warnPartialBlock(at: cursor & ~(span &- 1), size: span)
                break
            }
            s.store(0)
            gather.addRange(iova: IOVA(rawValue: cursor), size: span)
            cursor &+= span
            left &-= span
            // Leaving a leaf table's region: the tables this call cleared whole go.
            if cursor & (leafTableSpan &- 1) == 0 && size &- left >= leafTableSpan {
                releaseCoveredTables(from: iova, to: cursor, gather: &gather)
            }
        }
        return size &- left
    }

    // The WARNs of unmap, out of line so that the inlined loop stays small.

    /// An unmap of a size the format has not, or of no pages: WARNs (LPAE), unmaps nothing.
    @usableFromInline @inline(never)
    func refuseUnmap(pgsize: UInt64, pgcount: Int) -> UInt64 {
        warn("arm_lpae_unmap_pages", "page size 0x\(String(pgsize, radix: 16)) × \(pgcount) is not a valid unmap")
        return 0
    }

    /// An unmap outside the input range: WARNs (LPAE), unmaps nothing.
    @usableFromInline @inline(never)
    func refuseUnmap(outside iova: UInt64) -> UInt64 {
        warn("arm_lpae_unmap_pages", "iova 0x\(String(iova, radix: 16)) is outside the input range")
        return 0
    }

    /// An unmap reached an empty entry (LPAE WARNs unless the table is NO_WARN).
    @usableFromInline @inline(never)
    func warnUnmapHole(at iova: UInt64) {
        warn("__arm_lpae_unmap", "nothing is mapped at iova 0x\(String(iova, radix: 16))", quiet: true)
    }

    /// An unmap would split the block at `iova`: refused with a WARN (LPAE).
    @usableFromInline @inline(never)
    func warnPartialBlock(at iova: UInt64, size: UInt64) {
        warn("__arm_lpae_unmap", "refused to unmap part of the 0x\(String(size, radix: 16))-byte block "
             + "at iova 0x\(String(iova, radix: 16))")
    }

    /// Walks from the root to the table whose entry for `iova` is a leaf or a hole;
    /// returns it and its level. A level-1 table is remembered in the leaf-table cache.
    @usableFromInline @inline(never)
    func findLeafTable(_ iova: UInt64) -> (table: UInt64, level: Int) {
        let present = format.presentMask
        var table = rootTable
        var level = format.levels
        var pte = slot(table, iova, level: level).load()
        while pte & present != 0 && !format.isLeaf(pte, level: level) {
            table = format.decodeAddress(pte)
            level &-= 1
            pte = slot(table, iova, level: level).load()
        }
        if level == 1 { cacheLeafTable(table, for: iova) }
        return (table, level)
    }

    /// The unmap `[start, cursor)` has just cleared everything up to `cursor`, the end
    /// of a leaf table's span: unlinks each table ending at `cursor` whose whole span lies
    /// in the range (so every entry in it was a leaf this call cleared, or a table it
    /// already unlinked), lowest level first, the root excepted, and puts it on the
    /// gather's freelist. The unlink is a compare-and-swap, so that even overlapping
    /// unmaps (a caller bug) free a table once. Rare, so it re-walks from the root and
    /// stays out of line. Works on offsets in the input range, so that a TTBR1 range
    /// ending at 2^64 does not wrap.
    @usableFromInline @inline(never)
    func releaseCoveredTables(from start: UInt64, to cursor: UInt64, gather: inout IOTLBGather) {
        let first = start &- format.inputBase
        let end = cursor &- format.inputBase
        // `level` is the level of the entry that points to the table being released.
        var level = 2
        while level <= format.levels {
            let tableSpan = format.entrySpan(level: level)
            // Not at this level's boundary, or the table began before the range: no
            // table above is covered either.
            guard end & (tableSpan &- 1) == 0, end &- first >= tableSpan else { return }
            releaseTable(at: cursor &- tableSpan, level: level, gather: &gather)
            level &+= 1
        }
    }

    /// Unlinks the table that the entry at `level` for `iova` points to, if there is one,
    /// and puts it on the gather's freelist.
    func releaseTable(at iova: UInt64, level: Int, gather: inout IOTLBGather) {
        let present = format.presentMask
        var parent = rootTable
        var parentLevel = format.levels
        var pte = slot(parent, iova, level: parentLevel).load()
        while parentLevel > level {
            guard pte & present != 0, !format.isLeaf(pte, level: parentLevel) else { return }
            parent = format.decodeAddress(pte)
            parentLevel &-= 1
            pte = slot(parent, iova, level: parentLevel).load()
        }
        guard pte & present != 0, !format.isLeaf(pte, level: level),
              slot(parent, iova, level: level).compareExchange(expected: pte, desired: 0).exchanged else { return }
        let child = format.decodeAddress(pte)
        if level == 2 { forgetLeafTable(child, for: iova) }
        gather.freelist.append(PhysicalAddress(rawValue: child))
        state[0].subtract(1, ordering: .relaxed)
    }
}

extension IOPageTable {
    /// Unlinks every table page that lies wholly inside `[start, end)` and maps nothing,
    /// the root excepted, onto the gather's freelist: the kernel's `free_pgd_range`, with
    /// which `munmap` frees the page tables of the hole between the mappings left on
    /// either side (`floor`, `ceiling`). An unmap frees only the tables it covers; an mm
    /// knows which other tables are no one's. The caller owns the whole range (the mm
    /// lock); `end` is exclusive and may be the top of the input range.
    public func releaseEmptyTables(from start: IOVA, to end: IOVA, gather: inout IOTLBGather) {
        let first = start.rawValue &- format.inputBase
        let last = end.rawValue &- format.inputBase
        guard !destroyed, first < last else { return }
        _ = releaseEmptyTables(in: rootTable, level: format.levels, offset: 0, first, last, &gather)
    }

    /// Frees the empty tables below `table` (at `level`, mapping from input offset
    /// `offset`) that lie in `[start, end)`, offsets too; returns whether `table` is now
    /// empty.
    private func releaseEmptyTables(in table: UInt64, level: Int, offset: UInt64, _ start: UInt64, _ end: UInt64,
                                    _ gather: inout IOTLBGather) -> Bool {
        let span = format.entrySpan(level: level)
        var empty = true
        for i in 0..<(level == format.levels ? format.rootEntries : format.tableEntries) {
            let entryStart = offset &+ UInt64(i) &* span
            let s = PageTableEntrySlot(base + Int(truncatingIfNeeded: table) + i &* 8)
            let pte = s.load()
            guard pte & format.presentMask != 0 else { continue }
            guard level > 1, !format.isLeaf(pte, level: level),
                  entryStart < end, entryStart &+ (span &- 1) >= start else {
                empty = false
                continue
            }
            let child = format.decodeAddress(pte)
            let childEmpty = releaseEmptyTables(in: child, level: level - 1, offset: entryStart, start, end, &gather)
            let inside = entryStart >= start && entryStart &+ (span &- 1) < end
            if childEmpty && inside && s.compareExchange(expected: pte, desired: 0).exchanged {
                if level == 2 { forgetLeafTable(child, for: entryStart &+ format.inputBase) }
                gather.freelist.append(PhysicalAddress(rawValue: child))
                state[0].subtract(1, ordering: .relaxed)
            } else {
                empty = false
            }
        }
        return empty
    }
}
