/// The areas of an IOAS ordered by IOVA (`iopt->area_itree`, the interval tree of
/// `io_pagetable.c`). Areas never overlap, so ordering by first IOVA also orders them by
/// last IOVA, and an ordered map answers every interval query the kernel asks of its
/// interval tree (`iopt_area_iter_first`/`iopt_area_iter_next`, `iopt_area_contig_*`).
///
/// Performance: a VMM maps guest memory in hundreds of thousands of areas, and the kernel
/// looks areas up in O(log n). A flat sorted array made every map O(n) (insert) and every
/// in-order unmap O(n) (removal from the front), which is quadratic over a 1 GiB 4 KiB
/// run. This is a two-level sorted array: chunks of at most ``chunkCapacity`` areas with
/// their first IOVAs in a separate index, so a lookup is two binary searches and an
/// insert/remove moves at most one chunk's worth of elements. Each chunk keeps its IOVAs
/// in a plain `[UInt64]` beside the `[IOPTArea]` so the searches read integers only and
/// never touch (retain/release) the class references.
struct IOPTAreaIndex: Sequence {
    /// Largest chunk before it is split; small enough that the memmove of an insert or a
    /// removal stays within a few cache lines' worth of work.
    static let chunkCapacity = 128

    struct Chunk {
        var iovas: [UInt64] = []
        var areas: [IOPTArea] = []
    }

    /// A position: chunk index and index inside the chunk.
    struct Position: Equatable {
        var chunk: Int
        var index: Int
    }

    private var chunks: [Chunk] = []
    /// `chunks[c].iovas[0]` for every chunk, for the outer binary search.
    private var firsts: [UInt64] = []
    /// Number of areas.
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }

    /// The area at `p`.
    subscript(p: Position) -> IOPTArea { chunks[p.chunk].areas[p.index] }

    /// Index of the last element of `a` that is `<= x`, or -1.
    @inline(__always)
    private static func floorIndex(_ a: [UInt64], _ x: UInt64) -> Int {
        var lo = 0, hi = a.count
        while lo < hi {
            let mid = (lo &+ hi) >> 1
            if a[mid] <= x { lo = mid &+ 1 } else { hi = mid }
        }
        return lo &- 1
    }

    /// The position of the area with the greatest first IOVA `<= iova`, or nil.
    func floor(_ iova: UInt64) -> Position? {
        let c = Self.floorIndex(firsts, iova)
        if c < 0 { return nil }
        return Position(chunk: c, index: Self.floorIndex(chunks[c].iovas, iova))
    }

    /// The position after `p`, or nil at the end.
    func next(_ p: Position) -> Position? {
        if p.index &+ 1 < chunks[p.chunk].iovas.count { return Position(chunk: p.chunk, index: p.index &+ 1) }
        return p.chunk &+ 1 < chunks.count ? Position(chunk: p.chunk &+ 1, index: 0) : nil
    }

    /// The first position, or nil when empty.
    var firstPosition: Position? { chunks.isEmpty ? nil : Position(chunk: 0, index: 0) }

    /// The first IOVA of the area at `p`, read without touching the area object.
    func iova(at p: Position) -> UInt64 { chunks[p.chunk].iovas[p.index] }

    /// `iopt_area_iter_first(iopt, start, last)`: the position of the lowest area
    /// intersecting `[start, last]`, or nil.
    func firstIntersecting(_ start: UInt64, _ last: UInt64) -> Position? {
        var p: Position?
        if let f = floor(start) {
            p = self[f].last >= start ? f : next(f)
        } else {
            p = firstPosition
        }
        guard let q = p, iova(at: q) <= last else { return nil }
        return q
    }

    /// The area holding `iova`, or nil (`iopt_area_iter_first(iopt, iova, iova)`).
    func area(containing iova: UInt64) -> IOPTArea? {
        guard let p = floor(iova) else { return nil }
        let a = self[p]
        return a.last >= iova ? a : nil
    }

    /// The area starting exactly at `iova`, or nil (the next area of a contiguous walk).
    func area(startingAt iova: UInt64) -> IOPTArea? {
        guard let p = floor(iova), self.iova(at: p) == iova else { return nil }
        return self[p]
    }

    /// Adds `area`, which must not overlap any area already present.
    mutating func insert(_ area: IOPTArea) {
        let iova = area.iova
        count += 1
        if chunks.isEmpty {
            chunks.append(Chunk(iovas: [iova], areas: [area]))
            firsts.append(iova)
            return
        }
        let c = Swift.max(Self.floorIndex(firsts, iova), 0)
        let i = Self.floorIndex(chunks[c].iovas, iova) &+ 1
        chunks[c].iovas.insert(iova, at: i)
        chunks[c].areas.insert(area, at: i)
        if i == 0 { firsts[c] = iova }
        if chunks[c].iovas.count > Self.chunkCapacity { splitChunk(c) }
    }

    private mutating func splitChunk(_ c: Int) {
        let half = chunks[c].iovas.count / 2
        let rhs = Chunk(iovas: Array(chunks[c].iovas[half...]), areas: Array(chunks[c].areas[half...]))
        chunks[c].iovas.removeSubrange(half...)
        chunks[c].areas.removeSubrange(half...)
        chunks.insert(rhs, at: c &+ 1)
        firsts.insert(rhs.iovas[0], at: c &+ 1)
    }

    /// Removes `area` if present.
    mutating func remove(_ area: IOPTArea) {
        guard let p = floor(area.iova), iova(at: p) == area.iova, self[p] === area else { return }
        remove(at: p)
    }

    /// Removes the area at `p`.
    mutating func remove(at p: Position) {
        count -= 1
        chunks[p.chunk].iovas.remove(at: p.index)
        chunks[p.chunk].areas.remove(at: p.index)
        if chunks[p.chunk].iovas.isEmpty {
            chunks.remove(at: p.chunk)
            firsts.remove(at: p.chunk)
        } else if p.index == 0 {
            firsts[p.chunk] = chunks[p.chunk].iovas[0]
        }
    }

    /// In IOVA order.
    struct Iterator: IteratorProtocol {
        let index: IOPTAreaIndex
        var position: Position?
        mutating func next() -> IOPTArea? {
            guard let p = position else { return nil }
            position = index.next(p)
            return index[p]
        }
    }

    func makeIterator() -> Iterator { Iterator(index: self, position: firstPosition) }

    var underestimatedCount: Int { count }
}
