import IOMMUCore

/// Pin counts of physical pages (`FOLL_PIN` references, `page_maybe_dma_pinned`), per
/// machine memory: what `IOMMU_TEST_OP_MD_CHECK_REFS` reads, and what every teardown
/// must bring back to zero. An `iopt_pages` pins a page once however many domains,
/// copies and accesses use it.
public final class PagePinRegistry: @unchecked Sendable {
    private let lock = Lock()
    private var counts: [ObjectIdentifier: [UInt64: Int]] = [:]

    /// The registry of every machine in the process.
    public static let shared = PagePinRegistry()

    private static func frame(_ pa: UInt64) -> UInt64 { pa & ~UInt64(PhysicalMemory.frameSize - 1) }

    /// `pin_user_pages` on one page: +1 on the frame holding `pa`.
    func pin(_ memory: PhysicalMemory, _ pa: UInt64) {
        lock.withLock { counts[ObjectIdentifier(memory), default: [:]][Self.frame(pa), default: 0] += 1 }
    }

    /// `unpin_user_page`: -1 on the frame holding `pa`.
    func unpin(_ memory: PhysicalMemory, _ pa: UInt64) {
        lock.withLock {
            let key = ObjectIdentifier(memory), f = Self.frame(pa)
            guard let c = counts[key]?[f] else { preconditionFailure("unpin of a page that is not pinned") }
            counts[key]![f] = c > 1 ? c - 1 : nil
            if counts[key]!.isEmpty { counts[key] = nil }
        }
    }

    /// The pin count of the frame holding `pa`.
    public func pinCount(_ memory: PhysicalMemory, _ pa: UInt64) -> Int {
        lock.withLock { counts[ObjectIdentifier(memory)]?[Self.frame(pa)] ?? 0 }
    }

    /// Pages of `memory` pinned right now.
    public func pinnedPages(_ memory: PhysicalMemory) -> Int {
        lock.withLock { counts[ObjectIdentifier(memory)]?.count ?? 0 }
    }
}
