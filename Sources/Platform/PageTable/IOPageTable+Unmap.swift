extension IOPageTable {
    /// Unmaps `pgcount` pages of `pgsize` bytes from `iova`: `io_pgtable_ops.unmap_pages`
    /// (`arm_lpae_unmap_pages`, generic_pt's `unmap_pages`).
    ///
    /// Removes whole leaves only: a leaf reaching outside the range is never split
    /// (io-pgtable-arm refuses an unmap of part of a block since split-on-unmap was
    /// removed, and WARNs), so a page inside a block unmaps nothing. Stops at the first
    /// hole (LPAE WARNs there unless ``IOPageTableQuirks/noWarn``). Table pages that
    /// become empty are unlinked and put on `gather.freelist`, to be freed after the
    /// IOTLB flush; each removed leaf is added to the gather's range.
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
        guard state[1] == 0, size != 0 else { return 0 }
        guard L.inputRangeContains(format, iova: iova, size: size) else { return refuseUnmap(outside: iova) }
        let present = format.presentMask
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
            if s.load(as: UInt64.self) & present == 0 {
                warnUnmapHole(at: cursor)
                break
            }
            let span = L.entrySpan(format, level: level)
            // A leaf that starts before the cursor or ends past the range would be split.
            guard cursor & (span &- 1) == 0, span <= left else {
                warnPartialBlock(at: cursor & ~(span &- 1), size: span)
                break
            }
            s.storeBytes(of: 0, as: UInt64.self)
            gather.addRange(iova: IOVA(rawValue: cursor), size: span)
            if decrementOccupancy(table) == 0 && level < format.levels {
                releaseEmptyTables(from: table, level: level, iova: cursor, gather: &gather)
            }
            cursor &+= span
            left &-= span
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
        var pte = slot(table, iova, level: level).load(as: UInt64.self)
        while pte & present != 0 && !format.isLeaf(pte, level: level) {
            table = format.decodeAddress(pte)
            level &-= 1
            pte = slot(table, iova, level: level).load(as: UInt64.self)
        }
        if level == 1 { cacheLeafTable(table, for: iova) }
        return (table, level)
    }

    /// Unlinks `table` (empty, at `level`) and every ancestor it leaves empty, the root
    /// excepted, putting them on the gather's freelist. Rare, so it re-walks from the
    /// root rather than making every unmap record its path, and stays out of line.
    @usableFromInline @inline(never)
    func releaseEmptyTables(from table: UInt64, level: Int, iova: UInt64, gather: inout IOTLBGather) {
        forgetLeafTable()
        var child = table
        var childLevel = level
        while childLevel < format.levels && occupancy[Int(truncatingIfNeeded: child >> 12)] == 0 {
            var parent = rootTable
            var parentLevel = format.levels
            while parentLevel > childLevel + 1 {
                parent = format.decodeAddress(slot(parent, iova, level: parentLevel).load(as: UInt64.self))
                parentLevel -= 1
            }
            slot(parent, iova, level: parentLevel).storeBytes(of: 0, as: UInt64.self)
            adjustOccupancy(parent, by: -1)
            gather.freelist.append(PhysicalAddress(rawValue: child))
            state[0] -= 1
            child = parent
            childLevel = parentLevel
        }
    }
}
