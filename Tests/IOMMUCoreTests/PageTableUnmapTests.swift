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

    func testEmptiedTablesGoToFreelistAndAreFreedOnlyOnRelease() {
        forEachFormat { fmt, t, memory in
            let P = fmt.page, B = fmt.block
            let before = memory.framesInUse
            let tables = (fmt.levels - 1) * fmt.framesPerTable
            let va = (B << UInt64(fmt.bitsPerLevel)) + B
            try mapOne(t, va, 0x100 * P, P)
            XCTAssertEqual(memory.framesInUse, before + tables, "\(fmt)")
            var g = IOTLBGather()
            XCTAssertEqual(t.unmap(iova: IOVA(rawValue: va), size: P, gather: &g), P, "\(fmt)")
            XCTAssertEqual(g.freelist.count, fmt.levels - 1, "\(fmt): every table but the root")
            XCTAssertEqual(t.tablePages, 1, "\(fmt)")
            XCTAssertEqual(memory.framesInUse, before + tables, "\(fmt): not freed before the sync")
            for pa in g.freelist { XCTAssertTrue(memory.isAllocated(pa), "\(fmt)") }
            let rootIndex = (va >> fmt.indexShift(level: fmt.levels)) & fmt.rootIndexMask
            XCTAssertEqual(memory.load64(t.root + rootIndex * 8), 0, "\(fmt): unlinked")
            g.releaseFreelist(to: memory)
            XCTAssertTrue(g.freelist.isEmpty)
            XCTAssertEqual(memory.framesInUse, before, "\(fmt)")
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
            let P = fmt.page, B = fmt.block
            try mapOne(t, B, 0x100 * P, P)
            var g = IOTLBGather()
            XCTAssertEqual(t.unmapPages(iova: IOVA(rawValue: B), pgsize: P, pgcount: 1, gather: &g), P, "\(fmt)")
            XCTAssertEqual(g.freelist.count, fmt.levels - 1, "\(fmt)")
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
            XCTAssertEqual(t.unmapPages(iova: IOVA(rawValue: B), pgsize: P, pgcount: 1, gather: &g), P, "\(fmt)")
            XCTAssertTrue(g.freelist.isEmpty, "\(fmt)")
            XCTAssertEqual(t.unmapPages(iova: IOVA(rawValue: B + P), pgsize: P, pgcount: 1, gather: &g), P, "\(fmt)")
            XCTAssertEqual(g.freelist.count, fmt.levels - 1, "\(fmt)")
            XCTAssertEqual(t.tablePages, 1, "\(fmt)")
            g.releaseFreelist(to: memory)
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
