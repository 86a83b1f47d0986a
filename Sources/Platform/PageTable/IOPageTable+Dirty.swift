extension IOPageTable {
    /// Reports every leaf in `[iova, iova + size)` that is dirty, as `(leafIOVA,
    /// leafSize)`, cleaning it when `clear` is true: `iommu_dirty_ops.read_and_clear_dirty`
    /// over the table (x86: D, bit 6; VT-d second stage: D, bit 9, set by SSADE hardware;
    /// LPAE stage 1 with ``IOPageTableQuirks/armHD``: DBM set and AP[2] clear, cleaned by
    /// setting AP[2] again, as `arm_lpae_read_and_clear_dirty`; LPAE stage 2 reports
    /// nothing, as the kernel supports dirty tracking on stage 1 only). Holes are
    /// skipped. The caller flushes the IOTLB after clearing, so that the hardware marks
    /// the leaf again on the next write rather than trusting a cached dirty state.
    /// Returns no errno.
    public func readAndClearDirty(iova: IOVA, size: UInt64, clear: Bool, _ report: (IOVA, UInt64) -> Void) {
        let format = format
        forEachLeaf(iova: iova.rawValue, size: size) { leafIOVA, _, span, slot in
            var pte = slot.load()
            guard format.isDirty(pte) else { return }
            report(IOVA(rawValue: leafIOVA), span)
            // A compare-and-swap, as the hardware may mark the leaf meanwhile; if the
            // entry was unmapped meanwhile, there is nothing left to clean.
            while clear && format.isDirty(pte) {
                let (done, now) = slot.compareExchange(expected: pte, desired: format.cleaned(pte))
                if done { break }
                pte = now
            }
        }
    }
}
