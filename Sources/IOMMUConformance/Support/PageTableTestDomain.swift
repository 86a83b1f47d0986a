import IOMMUCore

/// A paging domain on IOMMUCore's radix engine (x86-64 4-level format) with page sizes
/// 4K | 2M | 1G, owned by the vendor's driver, for the checks of the core's own page-size
/// selection (`iommu_pgsize`) and unmap rules, whatever the vendor's page sizes are. It
/// records each `map_pages` call so a check can see the (pgsize, pgcount) the core chose.
final class PageTableTestDomain: IOMMUDomain, @unchecked Sendable {
    let table: IOPageTable
    private(set) var mapCalls: [(pgsize: UInt64, count: Int)] = []

    init(owner: any IOMMUDriver, memory: PhysicalMemory) throws {
        table = try IOPageTable(format: .x86_64(levels: 4), memory: memory)
        super.init(type: .unmanaged, owner: owner, ops: [.mapPages, .unmapPages, .iotlbSync, .iovaToPhys],
                   pgsizeBitmap: 1 << 12 | 1 << 21 | 1 << 30)
    }

    override func mapPages(iova: IOVA, paddr: PhysicalAddress, pgsize: UInt64, pgcount: Int, prot: IOMMUProt,
                           mapped: inout UInt64) throws(Errno) {
        mapCalls.append((pgsize, pgcount))
        try table.mapPages(iova: iova, paddr: paddr, pgsize: pgsize, pgcount: pgcount, prot: prot, mapped: &mapped)
    }

    override func unmapPages(iova: IOVA, pgsize: UInt64, pgcount: Int, gather: inout IOTLBGather) -> UInt64 {
        table.unmapPages(iova: iova, pgsize: pgsize, pgcount: pgcount, gather: &gather)
    }

    override func iovaToPhys(_ iova: IOVA) -> PhysicalAddress { table.iovaToPhys(iova) }

    /// The leaf size the hardware walk finds at `iova`, 0 if unmapped.
    func leafSize(_ iova: IOVA) -> UInt64 {
        if case .translated(_, let size, _) = IOPageTable.walk(memory: table.memory, format: table.format, root: table.root,
                                                               iova: iova, access: [.read], setAccessedDirty: false) {
            return size
        }
        return 0
    }
}
