extension IOPageTable {
    /// Unmaps `pgcount` pages of `pgsize` bytes from `iova`: `io_pgtable_ops.unmap_pages`.
    ///
    /// Removes whole leaves only: a leaf reaching outside the range is never split
    /// (spec §6 item 6, io-pgtable-arm's "partial large IOPTE" refusal), so 4 KiB inside
    /// a 2 MiB block unmaps nothing. Stops at the first hole. Table pages that become
    /// empty are unlinked and put on `gather.freelist`, to be freed after the IOTLB flush
    /// (check 33); each removed leaf is added to the gather's range.
    /// - Returns: bytes unmapped (never an errno, like the kernel's `size_t`); 0 for a
    ///   `pgsize` outside the format, a misaligned `iova` or `pgcount` < 1.
    ///
    /// Inlinable: a caller passing a constant `pgsize` and `pgcount` (one 4 KiB page, the
    /// usual DMA unmap) gets the checks folded away and the per-leaf loop inline; the
    /// walk from the root and the release of empty tables stay out of line.
    @inlinable
    public func unmapPages(iova: IOVA, pgsize: UInt64, pgcount: Int, gather: inout IOTLBGather) -> UInt64 {
        let iova = iova.rawValue
        guard PageTableFormat.leafLevel(forPageSize: pgsize) != 0, format.pageSizes & pgsize != 0,
              pgcount > 0, iova & (pgsize - 1) == 0 else { return 0 }
        let total = pgsize.multipliedReportingOverflow(by: UInt64(pgcount))
        guard !total.overflow else { return 0 }
        return unmapLeaves(iova: iova, size: total.partialValue, gather: &gather)
    }

    /// Unmaps `size` bytes from `iova` leaf by leaf, whatever leaf sizes are there, so
    /// one call can remove several earlier maps: the core's `iommu_unmap` loop over
    /// `unmap_pages`. Stops at the first hole.
    /// - Returns: bytes unmapped; 0 if `iova` is unmapped, if the first leaf would be
    ///   split, or if `iova`/`size` are not 4 KiB aligned.
    public func unmap(iova: IOVA, size: UInt64, gather: inout IOTLBGather) -> UInt64 {
        guard (iova.rawValue | size) & 0xFFF == 0 else { return 0 }
        return unmapLeaves(iova: iova.rawValue, size: size, gather: &gather)
    }

    /// The engine of both unmaps. Inlinable with ``unmapPages(iova:pgsize:pgcount:gather:)``
    /// so that a per-page unmap costs no call; its slow paths are out of line.
    @inlinable @inline(__always)
    func unmapLeaves(iova: UInt64, size: UInt64, gather: inout IOTLBGather) -> UInt64 {
        guard state[1] == 0, size != 0 else { return 0 }
        let limit = UInt64(1) &<< UInt64(truncatingIfNeeded: format.vaBits)
        guard iova < limit, size <= limit &- iova else { return 0 }
        let end = iova + size
        let present = format.presentMask
        var cursor = iova
        while cursor < end {
            // The table holding the cursor's leaf (or hole): the cached leaf table when it
            // covers the cursor, else a walk from the root, kept out of line so that this
            // loop stays small enough for the per-page case.
            var table: UInt64
            var level: Int
            if let leafTable = cachedLeafTable(cursor) {
                table = leafTable
                level = 1
            } else {
                (table, level) = findLeafTable(cursor)
            }
            let s = slot(table, cursor, level: level)
            if s.load(as: UInt64.self) & present == 0 { break }
            let span = PageTableFormat.entrySpan(level: level)
            // A leaf that starts before the cursor or ends past the range would be split.
            guard cursor & (span &- 1) == 0, span <= end &- cursor else { break }
            s.storeBytes(of: 0, as: UInt64.self)
            gather.addRange(iova: IOVA(rawValue: cursor), size: span)
            if decrementOccupancy(table) == 0 && level < format.levels {
                releaseEmptyTables(from: table, level: level, iova: cursor, gather: &gather)
            }
            cursor &+= span
        }
        return cursor &- iova
    }

    /// Walks from the root to the table whose entry for `iova` is a leaf or a hole;
    /// returns it and its level. A level-1 table is remembered in the leaf-table cache.
    @usableFromInline @inline(never)
    func findLeafTable(_ iova: UInt64) -> (table: UInt64, level: Int) {
        let present = format.presentMask
        var table = rootTable
        var level = format.levels
        var pte = slot(table, iova, level: level).load(as: UInt64.self)
        while pte & present != 0 && !PageTableFormat.isLeaf(pte, level: level) {
            table = pte & PageTableFormat.addressMask
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
                parent = slot(parent, iova, level: parentLevel).load(as: UInt64.self) & PageTableFormat.addressMask
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
