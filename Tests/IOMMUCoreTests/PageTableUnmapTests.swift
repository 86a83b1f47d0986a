import IOMMUConformance
import XCTest
@testable import IOMMUCore
@testable import Platform

/// Unmap, freelist, dirty tracking and a randomized oracle check, over every format, in
/// each format's own sizes (`P` the page, `B` the first block).
final class PageTableUnmapTests: XCTestCase {
    func testUnmapUnmappedReturnsZero() {
        forEachFormat { fmt, t, _ in
            let P = fmt.page, B = fmt.block
            var g = IOTLBGather()
            XCTAssertEqual(t.unmap(iova: IOVA(rawValue: B), size: P, gather: &g), 0, "\(fmt)")
            XCTAssertEqual(t.unmapPages(iova: IOVA(rawValue: B), pgsize: P, pgcount: 1, gather: &g), 0, "\(fmt)")
            XCTAssertTrue(g.isEmpty, "\(fmt)")
        }
    }

    func testPartialBlockUnmapReturnsZeroAndKeepsBlock() {
        forEachFormat { fmt, t, _ in
            let P = fmt.page, B = fmt.block
            try mapOne(t, B, 2 * B, B)
            var g = IOTLBGather()
            XCTAssertEqual(t.unmapPages(iova: IOVA(rawValue: B + P), pgsize: P, pgcount: 1, gather: &g), 0, "\(fmt)")
            XCTAssertEqual(t.unmapPages(iova: IOVA(rawValue: B), pgsize: P, pgcount: 1, gather: &g), 0, "\(fmt): head of block")
            XCTAssertEqual(t.unmap(iova: IOVA(rawValue: B), size: B - P, gather: &g), 0, "\(fmt)")
            XCTAssertEqual(phys(t, B + P), 2 * B + P, "\(fmt): block still mapped")
            XCTAssertEqual(t.unmapPages(iova: IOVA(rawValue: B), pgsize: B, pgcount: 1, gather: &g), B, "\(fmt)")
            XCTAssertEqual(phys(t, B), 0, "\(fmt)")
            XCTAssertEqual(g.start.rawValue, B, "\(fmt)")
            XCTAssertEqual(g.end.rawValue, 2 * B - 1, "\(fmt)")
            g.releaseFreelist(to: t.memory)
        }
    }

    func testUnmapSpanningTwoMapsReturnsSum() {
        forEachFormat { fmt, t, _ in
            let P = fmt.page
            try t.map(iova: IOVA(rawValue: 0), paddr: PhysicalAddress(rawValue: 0x100 * P), size: 3 * P, prot: .read)
            try t.map(iova: IOVA(rawValue: 3 * P), paddr: PhysicalAddress(rawValue: 0x800 * P), size: 5 * P, prot: .read)
            var g = IOTLBGather()
            XCTAssertEqual(t.unmap(iova: IOVA(rawValue: 0), size: 8 * P, gather: &g), 8 * P, "\(fmt)")
            XCTAssertEqual(phys(t, 4 * P), 0, "\(fmt)")
            g.releaseFreelist(to: t.memory)
        }
    }

    func testUnmapMixedLeafSizes() {
        forEachFormat { fmt, t, _ in
            let P = fmt.page, B = fmt.block
            try t.map(iova: IOVA(rawValue: B - P), paddr: PhysicalAddress(rawValue: B - P), size: B + P, prot: .read)
            var g = IOTLBGather()
            XCTAssertEqual(t.unmap(iova: IOVA(rawValue: B - P), size: B + P, gather: &g), B + P, "\(fmt)")
            XCTAssertEqual(g.pgsize, P, "\(fmt): smallest leaf gathered")
            g.releaseFreelist(to: t.memory)
        }
    }

    func testUnmapStopsAtHole() {
        forEachFormat { fmt, t, _ in
            let P = fmt.page
            try mapOne(t, 0, 0x100 * P, P, count: 2)
            try mapOne(t, 3 * P, 0x200 * P, P)
            var g = IOTLBGather()
            XCTAssertEqual(t.unmap(iova: IOVA(rawValue: 0), size: 4 * P, gather: &g), 2 * P, "\(fmt)")
            XCTAssertEqual(phys(t, 3 * P), 0x200 * P, "\(fmt): beyond the hole untouched")
            XCTAssertEqual(g.end.rawValue, 2 * P - 1, "\(fmt)")
        }
    }

    func testUnmapRangeEndingInsideBlockStopsBeforeIt() {
        forEachFormat { fmt, t, _ in
            let P = fmt.page, B = fmt.block
            try mapOne(t, B - P, 0x100 * P, P)
            try mapOne(t, B, 2 * B, B)
            var g = IOTLBGather()
            XCTAssertEqual(t.unmap(iova: IOVA(rawValue: B - P), size: 2 * P, gather: &g), P, "\(fmt)")
            XCTAssertEqual(phys(t, B), 2 * B, "\(fmt)")
            g.releaseFreelist(to: t.memory)
        }
    }

    /// A table page goes only when one unmap clears all of its span (generic_pt frees a
    /// table "fully covered" by the range): it is unlinked at once but waits on the
    /// freelist, still allocated, until released after the IOTLB sync. A table that an
    /// unmap merely leaves empty stays, as another caller may be mapping into it.
    func testCoveredTablesGoToFreelistAndAreFreedOnlyOnRelease() {
        forEachFormat { fmt, t, memory in
            let P = fmt.page, B = fmt.block, F = fmt.framesPerTable
            let big = B << UInt64(fmt.bitsPerLevel), va = big + B
            let before = memory.framesInUse
            XCTAssertEqual(try mapOne(t, va, 0x100 * P, P, count: Int(B / P)), B, "\(fmt): one full leaf table")
            XCTAssertEqual(memory.framesInUse, before + (fmt.levels - 1) * F, "\(fmt)")
            var g = IOTLBGather()
            XCTAssertEqual(t.unmap(iova: IOVA(rawValue: va), size: P, gather: &g), P, "\(fmt)")
            XCTAssertTrue(g.freelist.isEmpty, "\(fmt): a page of the table is no cover")
            XCTAssertEqual(try mapOne(t, va, 0x100 * P, P), P, "\(fmt)")
            XCTAssertEqual(t.unmap(iova: IOVA(rawValue: va), size: B, gather: &g), B, "\(fmt)")
            XCTAssertEqual(g.freelist.count, 1, "\(fmt): the leaf table")
            XCTAssertEqual(t.tablePages, fmt.levels - 1, "\(fmt)")
            XCTAssertEqual(memory.framesInUse, before + (fmt.levels - 1) * F, "\(fmt): not freed before the sync")
            for pa in g.freelist { XCTAssertTrue(memory.isAllocated(pa), "\(fmt)") }
            XCTAssertEqual(t.findLeafTable(va).level, 2, "\(fmt): unlinked")
            g.releaseFreelist(to: memory)
            XCTAssertTrue(g.freelist.isEmpty)
            XCTAssertEqual(memory.framesInUse, before + (fmt.levels - 2) * F, "\(fmt)")
            // A whole table of blocks: the table holding them is covered too (unless it
            // is the root).
            guard fmt.levels > 2 else { return }
            try t.map(iova: IOVA(rawValue: big), paddr: PhysicalAddress(rawValue: big), size: big, prot: .read,
                      pageSizes: B)
            XCTAssertEqual(t.unmap(iova: IOVA(rawValue: big), size: big, gather: &g), big, "\(fmt)")
            XCTAssertEqual(g.freelist.count, 1, "\(fmt): the table of blocks")
            g.releaseFreelist(to: memory)
            XCTAssertEqual(t.tablePages, fmt.levels - 2, "\(fmt): the tables above stay")
            XCTAssertEqual(memory.framesInUse, before + (fmt.levels - 3) * F, "\(fmt)")
        }
    }

    /// Two unmaps that between them empty a table, neither covering it, leave it linked;
    /// maps into it go on working.
    func testTableEmptiedPieceByPieceStays() {
        forEachFormat { fmt, t, _ in
            let P = fmt.page, B = fmt.block
            XCTAssertEqual(try mapOne(t, B, 0x100 * P, P, count: Int(B / P)), B, "\(fmt)")
            var g = IOTLBGather()
            XCTAssertEqual(t.unmap(iova: IOVA(rawValue: B), size: P, gather: &g), P, "\(fmt)")
            XCTAssertEqual(t.unmap(iova: IOVA(rawValue: B + P), size: B - P, gather: &g), B - P, "\(fmt)")
            XCTAssertTrue(g.freelist.isEmpty, "\(fmt)")
            XCTAssertEqual(t.tablePages, fmt.levels, "\(fmt)")
            XCTAssertEqual(try mapOne(t, B + 7 * P, 0x300 * P, P), P, "\(fmt)")
            XCTAssertEqual(phys(t, B + 7 * P), 0x300 * P, "\(fmt)")
            XCTAssertEqual(t.tablePages, fmt.levels, "\(fmt): the same leaf table")
        }
    }

    /// A block goes where an emptied table stays, replacing it (its pages freed at once),
    /// as generic_pt and io-pgtable-arm replace a table that maps nothing; a table that
    /// still maps a page refuses the block.
    func testBlockReplacesEmptiedTable() {
        forEachFormat { fmt, t, memory in
            let P = fmt.page, B = fmt.block
            let before = memory.framesInUse
            XCTAssertEqual(try mapOne(t, B, 0x100 * P, P, count: 2), 2 * P, "\(fmt)")
            var g = IOTLBGather()
            XCTAssertEqual(t.unmap(iova: IOVA(rawValue: B), size: P, gather: &g), P, "\(fmt)")
            assertErrno(.exists, "\(fmt)") { () throws(Errno) in try mapOne(t, B, 2 * B, B) }
            XCTAssertEqual(phys(t, B + P), 0x101 * P, "\(fmt): the page stays")
            XCTAssertEqual(t.unmap(iova: IOVA(rawValue: B + P), size: P, gather: &g), P, "\(fmt)")
            XCTAssertEqual(t.tablePages, fmt.levels, "\(fmt): the emptied table stays")
            XCTAssertEqual(try mapOne(t, B, 2 * B, B), B, "\(fmt)")
            XCTAssertEqual(t.tablePages, fmt.levels - 1, "\(fmt)")
            XCTAssertEqual(memory.framesInUse, before + (fmt.levels - 2) * fmt.framesPerTable, "\(fmt): freed")
            XCTAssertEqual(phys(t, B + P), 2 * B + P, "\(fmt)")
            // Page maps and unmaps there meet the block, not the cached old table.
            assertErrno(.exists, "\(fmt)") { () throws(Errno) in try mapOne(t, B + P, 0x100 * P, P) }
            XCTAssertEqual(t.unmapPages(iova: IOVA(rawValue: B), pgsize: P, pgcount: 1, gather: &g), 0, "\(fmt)")
            XCTAssertTrue(g.freelist.isEmpty, "\(fmt)")
        }
    }

    func testTableStaysWhileItHasEntries() {
        forEachFormat { fmt, t, _ in
            let P = fmt.page
            try mapOne(t, 0, 0x100 * P, P, count: 2)
            var g = IOTLBGather()
            XCTAssertEqual(t.unmapPages(iova: IOVA(rawValue: 0), pgsize: P, pgcount: 1, gather: &g), P, "\(fmt)")
            XCTAssertTrue(g.freelist.isEmpty, "\(fmt)")
            XCTAssertEqual(phys(t, P), 0x101 * P, "\(fmt)")
            XCTAssertEqual(t.tablePages, fmt.levels, "\(fmt)")
        }
    }

    func testDirtyBitsReadAndClear() {
        forEachFormat { fmt, t, memory in
            guard fmt.tracksDirty else { return }
            let P = fmt.page, B = fmt.block
            try mapOne(t, 0, 0x100 * P, P, count: 4)
            try mapOne(t, B, 2 * B, B)
            // Dirty tracking starts with a harvest that clears (iommufd does one when it
            // is switched on): LPAE maps a writable leaf writable-dirty, x86 and VT-d clean.
            var initial = 0
            t.readAndClearDirty(iova: IOVA(rawValue: 0), size: 2 * B, clear: true) { _, _ in initial += 1 }
            XCTAssertEqual(initial, fmt.lpae == nil ? 0 : 5, "\(fmt)")
            for va in [P * 2, B + 5 * P] {
                let r = IOPageTable.walk(memory: memory, format: fmt, root: t.root, iova: IOVA(rawValue: va),
                                         access: [.write, .user], setAccessedDirty: true)
                guard case .translated = r else { return XCTFail("\(fmt): \(r)") }
            }
            _ = IOPageTable.walk(memory: memory, format: fmt, root: t.root, iova: IOVA(rawValue: 0), access: .read, setAccessedDirty: true)
            var seen: [(UInt64, UInt64)] = []
            t.readAndClearDirty(iova: IOVA(rawValue: 0), size: 2 * B, clear: false) { seen.append(($0.rawValue, $1)) }
            XCTAssertEqual(seen.map(\.0), [2 * P, B], "\(fmt)")
            XCTAssertEqual(seen.map(\.1), [P, B], "\(fmt)")
            seen = []
            t.readAndClearDirty(iova: IOVA(rawValue: 0), size: 2 * B, clear: true) { seen.append(($0.rawValue, $1)) }
            XCTAssertEqual(seen.count, 2, "\(fmt)")
            seen = []
            t.readAndClearDirty(iova: IOVA(rawValue: 0), size: 2 * B, clear: false) { seen.append(($0.rawValue, $1)) }
            XCTAssertTrue(seen.isEmpty, "\(fmt): cleared")
            XCTAssertEqual(phys(t, 2 * P), 0x102 * P, "\(fmt): mapping intact")
            let again = IOPageTable.walk(memory: memory, format: fmt, root: t.root, iova: IOVA(rawValue: 2 * P),
                                         access: [.write, .user], setAccessedDirty: true)
            guard case .translated = again else { return XCTFail("\(fmt): a cleaned leaf stays writable: \(again)") }
            seen = []
            t.readAndClearDirty(iova: IOVA(rawValue: 0), size: 2 * B, clear: false) { seen.append(($0.rawValue, $1)) }
            XCTAssertEqual(seen.map(\.0), [2 * P], "\(fmt): dirty again after the next write")
        }
    }

    /// Per-page maps and unmaps start at the level-1 table they used last; once that
    /// table is released, what replaces it (a block, a new table) must be found by a walk.
    func testLeafTableCacheForgetsReleasedTables() {
        forEachFormat { fmt, t, memory in
            let P = fmt.page, B = fmt.block, n = Int(B / P)
            XCTAssertEqual(try mapOne(t, B, 0x100 * P, P, count: n), B, "\(fmt)")
            var g = IOTLBGather()
            for i in 0..<UInt64(n - 1) {
                XCTAssertEqual(t.unmapPages(iova: IOVA(rawValue: B + i * P), pgsize: P, pgcount: 1, gather: &g), P)
            }
            XCTAssertTrue(g.freelist.isEmpty, "\(fmt)")
            XCTAssertEqual(try mapOne(t, B, 0x100 * P, P, count: n - 1), UInt64(n - 1) * P, "\(fmt): the cached table")
            XCTAssertEqual(t.unmapPages(iova: IOVA(rawValue: B), pgsize: P, pgcount: n, gather: &g), B, "\(fmt)")
            XCTAssertEqual(g.freelist.count, 1, "\(fmt)")
            g.releaseFreelist(to: memory)
            // A block where the leaf table was: page maps are refused, page unmaps split nothing.
            try mapOne(t, B, 2 * B, B)
            assertErrno(.exists, "\(fmt)") { () throws(Errno) in try mapOne(t, B + P, 0x100 * P, P) }
            XCTAssertEqual(t.unmapPages(iova: IOVA(rawValue: B), pgsize: P, pgcount: 1, gather: &g), 0, "\(fmt)")
            XCTAssertEqual(phys(t, B + P), 2 * B + P, "\(fmt)")
            XCTAssertEqual(t.unmapPages(iova: IOVA(rawValue: B), pgsize: B, pgcount: 1, gather: &g), B, "\(fmt)")
            g.releaseFreelist(to: memory)
            // A new leaf table in the same region, shared by consecutive one-page calls.
            try mapOne(t, B, 0x100 * P, P)
            try mapOne(t, B + P, 0x200 * P, P)
            XCTAssertEqual(t.tablePages, fmt.levels, "\(fmt)")
            XCTAssertEqual(phys(t, B + P), 0x200 * P, "\(fmt)")
            XCTAssertEqual(t.unmapPages(iova: IOVA(rawValue: B), pgsize: P, pgcount: 2, gather: &g), 2 * P, "\(fmt)")
            XCTAssertTrue(g.freelist.isEmpty, "\(fmt): two pages cover no table")
            XCTAssertEqual(t.tablePages, fmt.levels, "\(fmt)")
        }
    }

    func testRandomSequenceMatchesOracle() {
        forEachFormat { fmt, t, memory in
            let P = fmt.page, B = fmt.block
            var rng = XorShift(state: 0xC0FF_EE12_3456_789B)
            var oracle: [UInt64: UInt64] = [:] // page iova -> pa
            let window: UInt64 = 4 * B / P
            for _ in 0..<3000 {
                let page = rng.below(window)
                let count = UInt64(1 + rng.below(8))
                let iova = page * P
                if rng.below(2) == 0 {
                    let pa = 0x1_0000 * P + rng.below(1 << 16) * P
                    let free = (0..<count).allSatisfy { oracle[iova + $0 * P] == nil }
                    var mapped: UInt64 = 0
                    do throws(Errno) {
                        try t.mapPages(iova: IOVA(rawValue: iova), paddr: PhysicalAddress(rawValue: pa), pgsize: P, pgcount: Int(count), prot: .read, mapped: &mapped)
                        XCTAssertTrue(free, "\(fmt): map succeeded over an occupied page")
                    } catch {
                        XCTAssertEqual(error, .exists, "\(fmt)")
                        XCTAssertFalse(free, "\(fmt)")
                    }
                    for i in 0..<(mapped / P) { oracle[iova + i * P] = pa + i * P }
                } else {
                    var expected: UInt64 = 0
                    while expected < count * P && oracle[iova + expected] != nil { expected += P }
                    var g = IOTLBGather()
                    XCTAssertEqual(t.unmap(iova: IOVA(rawValue: iova), size: count * P, gather: &g), expected, "\(fmt)")
                    for i in stride(from: 0, to: expected, by: Int(P)) { oracle[iova + i] = nil }
                    g.releaseFreelist(to: memory)
                }
            }
            for page in 0..<window {
                XCTAssertEqual(phys(t, page * P), oracle[page * P] ?? 0, "\(fmt) page \(page)")
            }
        }
    }

    func testDestroyIsIdempotentAndFreesEverything() {
        let memory = PhysicalMemory(size: 8 << 30)
        let baseline = memory.framesInUse
        for fmt in allFormats {
            let P = fmt.page, B = fmt.block, top = B << UInt64(fmt.bitsPerLevel)
            let t = try! IOPageTable(format: fmt, memory: memory)
            try! t.map(iova: IOVA(rawValue: 0), paddr: PhysicalAddress(rawValue: 0), size: 32 * B, prot: .read, pageSizes: P)
            try! t.map(iova: IOVA(rawValue: top), paddr: PhysicalAddress(rawValue: 0), size: top + B, prot: .read)
            XCTAssertGreaterThan(memory.framesInUse, baseline + 32 * fmt.framesPerTable, "\(fmt)")
            t.destroy()
            t.destroy()
            XCTAssertEqual(memory.framesInUse, baseline, "\(fmt)")
            XCTAssertEqual(phys(t, 0), 0, "\(fmt)")
            assertErrno(.invalidArgument, "\(fmt)") { () throws(Errno) in try mapOne(t, 0, 0, P) }
        }
        XCTAssertEqual(memory.framesInUse, baseline)
    }

    func testDeinitFreesTables() {
        let memory = PhysicalMemory(size: 8 << 30)
        let baseline = memory.framesInUse
        do {
            let t = try! IOPageTable(format: .x86_64(levels: 4), memory: memory)
            try! t.map(iova: IOVA(rawValue: 0), paddr: PhysicalAddress(rawValue: 0), size: 8 << 20, prot: .read, pageSizes: K4)
        }
        XCTAssertEqual(memory.framesInUse, baseline)
    }
}
