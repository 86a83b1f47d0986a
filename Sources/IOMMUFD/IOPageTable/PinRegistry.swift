import IOMMUCore

/// Pin counts of physical pages (`FOLL_PIN` references, `page_maybe_dma_pinned`), per
/// machine memory: what `IOMMU_TEST_OP_MD_CHECK_REFS` reads, and what every teardown
/// must bring back to zero. An `iopt_pages` pins a page once however many domains,
/// copies and accesses use it.
public final class PagePinRegistry: @unchecked Sendable {
    /// The pin counts of one memory: a flat array indexed by frame number (grown on
    /// demand) rather than a dictionary, because every IOAS_MAP/UNMAP updates it for
    /// every page; plus the number of frames with a non-zero count.
    struct Counts {
        fileprivate var byFrame: [UInt32] = []
        fileprivate var pinned = 0

        /// `pin_user_pages` on one page: +1 on the frame holding `pa`.
        mutating func pin(_ pa: PhysicalAddress) {
            let f = Int(truncatingIfNeeded: pa.rawValue >> PagePinRegistry.frameShift)
            if f >= byFrame.count {
                // An array made by the (optimised) standard library, then one copy: an
                // element-by-element append costs seconds for millions of frames in a
                // debug build.
                byFrame += [UInt32](repeating: 0, count: max(f + 1, byFrame.count * 2) - byFrame.count)
            }
            if byFrame[f] == 0 { pinned += 1 }
            byFrame[f] += 1
        }

        /// `unpin_user_page`: -1 on the frame holding `pa`.
        mutating func unpin(_ pa: PhysicalAddress) {
            let f = Int(truncatingIfNeeded: pa.rawValue >> PagePinRegistry.frameShift)
            guard f < byFrame.count, byFrame[f] > 0 else { preconditionFailure("unpin of a page that is not pinned") }
            byFrame[f] -= 1
            if byFrame[f] == 0 { pinned -= 1 }
        }

        func count(_ pa: PhysicalAddress) -> Int {
            let f = Int(truncatingIfNeeded: pa.rawValue >> PagePinRegistry.frameShift)
            return f < byFrame.count ? Int(byFrame[f]) : 0
        }
    }

    private let lock = Lock()
    private var counts: [ObjectIdentifier: Counts] = [:]

    /// The registry of every machine in the process.
    public static let shared = PagePinRegistry()

    fileprivate static let frameShift = UInt64(PhysicalMemory.frameSize.trailingZeroBitCount)

    /// Runs `body` on the pin counts of `memory` under the lock: one lock and one lookup
    /// for a whole batch of pages. A memory left with no pins leaves no entry, unless its
    /// counts cover more than 256 MiB of frames: a memory whose pinned frames sit high
    /// (a long-running service) would otherwise rebuild that array for every pin and
    /// unpin of a transient access.
    func update<R, E: Error>(_ memory: PhysicalMemory, _ body: (inout Counts) throws(E) -> R) throws(E) -> R {
        try lock.withLock { () throws(E) -> R in
            let key = ObjectIdentifier(memory)
            // One hash lookup per batch in the usual case (the memory already has pins):
            // the entry is found by index, mutated in place through `values` (no copy of
            // the array) and checked for emptiness by the same index, which stays valid
            // because `body` changes no key.
            let i: Dictionary<ObjectIdentifier, Counts>.Index
            if let found = counts.index(forKey: key) {
                i = found
            } else {
                counts[key] = Counts()
                i = counts.index(forKey: key)!
            }
            defer {
                if counts.values[i].pinned == 0 && counts.values[i].byFrame.count <= 1 << 16 { counts.remove(at: i) }
            }
            return try body(&counts.values[i])
        }
    }

    /// `pin_user_pages` on one page: +1 on the frame holding `pa`.
    func pin(_ memory: PhysicalMemory, _ pa: PhysicalAddress) {
        update(memory) { $0.pin(pa) }
    }

    /// `unpin_user_page`: -1 on the frame holding `pa`.
    func unpin(_ memory: PhysicalMemory, _ pa: PhysicalAddress) {
        update(memory) { $0.unpin(pa) }
    }

    /// The pin count of the frame holding `pa`.
    public func pinCount(_ memory: PhysicalMemory, _ pa: PhysicalAddress) -> Int {
        lock.withLock { counts[ObjectIdentifier(memory)]?.count(pa) ?? 0 }
    }

    /// Pages of `memory` pinned right now.
    public func pinnedPages(_ memory: PhysicalMemory) -> Int {
        lock.withLock { counts[ObjectIdentifier(memory)]?.pinned ?? 0 }
    }
}
