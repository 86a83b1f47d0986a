extension IOPageTable {
    /// Maps `pgcount` pages of `pgsize` bytes from `iova` to `paddr`:
    /// `io_pgtable_ops.map_pages`. Missing intermediate tables are allocated; consecutive
    /// leaves in one table are written without walking again.
    ///
    /// `mapped` is advanced by the bytes mapped, also when an error stops the call part
    /// way (the core then unmaps them, as `iommu_map` does).
    /// - Throws: `EINVAL` if `pgsize` is not in ``PageTableFormat/pageSizes``, `iova` or
    ///   `paddr` is not aligned to it, `pgcount` < 1, `paddr` exceeds the 52-bit output
    ///   range, `prot` has neither read nor write, or the table was destroyed;
    ///   `ERANGE` if the range reaches beyond ``PageTableFormat/vaBits``;
    ///   `EEXIST` if a slot is already in use (a leaf, or for a block also a table), in
    ///   which case the existing mapping is left as it was; `ENOMEM` if a table page
    ///   cannot be allocated.
    public func mapPages(iova: IOVA, paddr: PhysicalAddress, pgsize: UInt64, pgcount: Int, prot: IOMMUProt,
                         mapped: inout UInt64) throws(Errno) {
        let iova = iova.rawValue, paddr = paddr.rawValue
        let leafLevel = PageTableFormat.leafLevel(forPageSize: pgsize)
        guard leafLevel != 0, format.pageSizes & pgsize != 0, pgcount > 0,
              (iova | paddr) & (pgsize - 1) == 0, !prot.isDisjoint(with: [.read, .write]),
              state[1] == 0 else { throw .invalidArgument }
        let total = pgsize.multipliedReportingOverflow(by: UInt64(pgcount))
        guard !total.overflow, paddr & ~PageTableFormat.addressMask == 0,
              (paddr &+ total.partialValue &- 1) & ~(PageTableFormat.addressMask | 0xFFF) == 0
        else { throw .invalidArgument }
        let limit = UInt64(1) &<< UInt64(truncatingIfNeeded: format.vaBits)
        guard iova < limit, total.partialValue <= limit &- iova else { throw .outOfRange }

        let leafBits = format.leafBits(prot: prot, level: leafLevel)
        let present = format.presentMask
        var va = iova
        var pa = paddr
        var remaining = pgcount
        var done: UInt64 = 0
        defer { mapped &+= done }
        while remaining > 0 {
            // Descend to the table that holds the leaves, creating tables on the way; for
            // 4 KiB leaves start at the cached leaf table when it covers `va`.
            var table = rootTable
            var level = format.levels
            if leafLevel == 1, let leafTable = cachedLeafTable(va) {
                table = leafTable
                level = 1
            }
            while level > leafLevel {
                let s = slot(table, va, level: level)
                let pte = s.load(as: UInt64.self)
                if pte & present == 0 {
                    let child = try allocTable()
                    s.storeBytes(of: child | format.tableBits, as: UInt64.self)
                    adjustOccupancy(table, by: 1)
                    table = child
                } else if PageTableFormat.isLeaf(pte, level: level) {
                    throw .exists
                } else {
                    table = pte & PageTableFormat.addressMask
                }
                level &-= 1
            }
            if leafLevel == 1 { cacheLeafTable(table, for: va) }
            // Fill consecutive slots of this table.
            var index = Int(truncatingIfNeeded: (va &>> UInt64(truncatingIfNeeded: 3 &+ 9 &* leafLevel)) & 511)
            let entries = (base + Int(truncatingIfNeeded: table)).assumingMemoryBound(to: UInt64.self)
            var written: Int16 = 0
            defer { adjustOccupancy(table, by: written) }
            repeat {
                if entries[index] & present != 0 { throw .exists }
                entries[index] = pa | leafBits
                written &+= 1
                index &+= 1
                remaining &-= 1
                va &+= pgsize
                pa &+= pgsize
                done &+= pgsize
            } while remaining > 0 && index < 512
        }
    }

    /// Maps `size` bytes choosing page sizes with ``iommuPageSize(iova:paddr:size:pageSizes:)``,
    /// as the core's `iommu_map` does over `map_pages`. All or nothing: on an error the
    /// part already mapped is unmapped again (invariant I5) and its emptied table pages
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
        guard size != 0, sizes != 0, sizes & ~format.pageSizes == 0 else { throw .invalidArgument }
        let minSize = UInt64(1) << UInt64(sizes.trailingZeroBitCount)
        guard (iova.rawValue | paddr.rawValue | size) & (minSize - 1) == 0 else { throw .invalidArgument }
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
