extension IOPageTable {
    /// Reports every leaf in `[iova, iova + size)` whose dirty bit is set, as
    /// `(leafIOVA, leafSize)`, clearing the bit when `clear` is true:
    /// `iommu_dirty_ops.read_and_clear_dirty` over the table (x86: D, bit 6; VT-d
    /// second stage: D, bit 9, set by SSADE hardware). Holes are skipped. The caller
    /// flushes the IOTLB after clearing, so that the hardware sets D again on the next
    /// write rather than trusting a cached dirty state. Returns no errno.
    public func readAndClearDirty(iova: IOVA, size: UInt64, clear: Bool, _ report: (IOVA, UInt64) -> Void) {
        let dirty = format.dirtyBit
        forEachLeaf(iova: iova.rawValue, size: size) { leafIOVA, _, span, slot in
            let pte = slot.load(as: UInt64.self)
            guard pte & dirty != 0 else { return }
            report(IOVA(rawValue: leafIOVA), span)
            if clear { slot.storeBytes(of: pte & ~dirty, as: UInt64.self) }
        }
    }
}
