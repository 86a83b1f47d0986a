extension IOPageTable {
    /// Walks a stage-1 table whose tables are at intermediate physical addresses, as an
    /// IOMMU does in nested translation (an SMMUv3 NESTED stream table entry: the guest's
    /// stage-1 tables live in guest memory). Every table address the walk meets, the
    /// root and each next-level descriptor's, is first translated by `tableAddress` (the
    /// hardware's stage-2 walk for a read); nil there ends the walk with
    /// ``PageWalkResult/notPresent(level:)`` at that level, and the caller, which knows
    /// why its stage 2 refused, reports that fault instead. A translated result's `pa` is
    /// the stage-1 output, an intermediate physical address the caller translates by
    /// stage 2 as well. Otherwise as
    /// ``walk(memory:format:root:iova:access:setAccessedDirty:)``. No kernel function
    /// corresponds; it is hardware the kernel programs.
    public static func walk(memory: PhysicalMemory, format: PageTableFormat, root: PhysicalAddress, iova: IOVA,
                            access: WalkAccess, setAccessedDirty: Bool,
                            tableAddress: (PhysicalAddress) -> PhysicalAddress?) -> PageWalkResult {
        switch format.layout {
        case .x86:
            return nestedWalk(X86Layout.self, memory: memory, format: format, root: root.rawValue, iova: iova.rawValue,
                              access: access, setAccessedDirty: setAccessedDirty, tableAddress: tableAddress)
        case .lpae4K:
            return nestedWalk(LPAE4KLayout.self, memory: memory, format: format, root: root.rawValue, iova: iova.rawValue,
                              access: access, setAccessedDirty: setAccessedDirty, tableAddress: tableAddress)
        case .lpae:
            return nestedWalk(LPAELayout.self, memory: memory, format: format, root: root.rawValue, iova: iova.rawValue,
                              access: access, setAccessedDirty: setAccessedDirty, tableAddress: tableAddress)
        }
    }

    /// The nested walk, for one layout: the loop of the plain walk with each table's
    /// address translated before it is read.
    static func nestedWalk<L: PageTableLayout>(_: L.Type, memory: PhysicalMemory, format: PageTableFormat, root: UInt64,
                                               iova: UInt64, access: WalkAccess, setAccessedDirty: Bool,
                                               tableAddress: (PhysicalAddress) -> PhysicalAddress?) -> PageWalkResult {
        var level = format.levels
        guard (iova &- L.inputBase(format)) &>> UInt64(truncatingIfNeeded: format.vaBits) == 0 else {
            return .notPresent(level: level)
        }
        let base = memory.base
        let limit = memory.size
        let present = format.presentMask
        let accessed = format.accessedBit
        let block = L.blockTest(format)
        let addressMask = L.addressMask(format)
        var shift = L.indexShift(format, level: level)
        var mask = L.rootIndexMask(format)
        var tableIPA = root
        var tablesAll: UInt64 = ~0
        var tablesAny: UInt64 = 0
        while true {
            guard let table = tableAddress(PhysicalAddress(rawValue: tableIPA))?.rawValue else {
                return .notPresent(level: level)
            }
            let entry = table | (((iova &>> shift) & mask) &<< 3)
            // The stage 2 may point anywhere: outside memory faults like a missing table.
            if entry >= limit || limit - entry < 8 { return .notPresent(level: level) }
            let slot = base + Int(truncatingIfNeeded: entry)
            let pte = PageTableEntrySlot(slot).load()
            if pte & present == 0 { return .notPresent(level: level) }
            if level == 1 || pte & block.mask == block.value {
                return leaf(L.self, format: format, pte, at: slot, level: level, shift: shift, iova: iova,
                            access: access, setAccessedDirty: setAccessedDirty,
                            tablesAll: tablesAll, tablesAny: tablesAny)
            }
            tablesAll &= pte
            tablesAny |= pte
            if setAccessedDirty && pte & accessed != accessed { markAccessed(slot, pte, accessed: accessed) }
            tableIPA = L.decode(format, pte, mask: addressMask)
            level &-= 1
            shift = L.indexShift(format, level: level)
            mask = L.tableIndexMask(format)
        }
    }
}
