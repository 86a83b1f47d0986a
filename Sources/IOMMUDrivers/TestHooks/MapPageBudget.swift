import Synchronization

/// A domain's `map_pages` budget for the `failMapAfterPages` test hook: once that many
/// more pages (of the size each call maps) are mapped, `map_pages` fails with `ENOMEM`.
/// Off (-1) by default; the map path then pays one relaxed load (``isArmed``). No kernel
/// counterpart: the kernel injects such faults with `iommufd_should_fail()`.
package struct MapPageBudget: ~Copyable, Sendable {
    private let left = Atomic<Int>(-1)

    package init() {}

    /// Whether the hook is on.
    @inline(__always)
    package var isArmed: Bool { left.load(ordering: .relaxed) >= 0 }

    /// The pages left, nil while off.
    package var pages: Int? {
        let n = left.load(ordering: .relaxed)
        return n < 0 ? nil : n
    }

    /// Sets the pages left (nil: off).
    package func set(_ pages: Int?) { left.store(pages.map { max($0, 0) } ?? -1, ordering: .relaxed) }

    /// Takes up to `pages` from the budget; how many it took (all of them when off).
    package func take(_ pages: Int) -> Int {
        var n = left.load(ordering: .relaxed)
        while n >= 0 {
            let take = min(n, pages)
            let (exchanged, current) = left.compareExchange(expected: n, desired: n - take, ordering: .relaxed)
            if exchanged { return take }
            n = current
        }
        return pages
    }
}
