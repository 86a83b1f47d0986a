import IOMMUConformance
import XCTest
@testable import IOMMUCore

/// Unmap, freelist, dirty tracking and a randomized oracle check, over every format.
final class PageTableUnmapTests: XCTestCase {
    func testUnmapUnmappedReturnsZero() {
        forEachFormat { fmt, t, _ in
            var g = IOTLBGather()
            XCTAssertEqual(t.unmap(iova: IOVA(rawValue: M2), size: K4, gather: &g), 0, "\(fmt)")
            XCTAssertEqual(t.unmapPages(iova: IOVA(rawValue: M2), pgsize: K4, pgcount: 1, gather: &g), 0, "\(fmt)")
            XCTAssertTrue(g.isEmpty, "\(fmt)")
        }
    }

    func testPartialBlockUnmapReturnsZeroAndKeepsBlock() {
        forEachFormat { fmt, t, _ in
            try mapOne(t, M2, 0x40_0000, M2)
            var g = IOTLBGather()
            XCTAssertEqual(t.unmapPages(iova: IOVA(rawValue: M2 + K4), pgsize: K4, pgcount: 1, gather: &g), 0, "\(fmt)")
            XCTAssertEqual(t.unmapPages(iova: IOVA(rawValue: M2), pgsize: K4, pgcount: 1, gather: &g), 0, "\(fmt): head of block")
            XCTAssertEqual(t.unmap(iova: IOVA(rawValue: M2), size: M2 - K4, gather: &g), 0, "\(fmt)")
            XCTAssertEqual(t.iovaToPhys(IOVA(rawValue: M2 + K4)), 0x40_1000, "\(fmt): block still mapped")
            XCTAssertEqual(t.unmapPages(iova: IOVA(rawValue: M2), pgsize: M2, pgcount: 1, gather: &g), M2, "\(fmt)")
            XCTAssertEqual(t.iovaToPhys(IOVA(rawValue: M2)), 0, "\(fmt)")
            XCTAssertEqual(g.start.rawValue, M2, "\(fmt)")
            XCTAssertEqual(g.end.rawValue, 2 * M2 - 1, "\(fmt)")
            g.releaseFreelist(to: t.memory)
        }
    }

    func testUnmapSpanningTwoMapsReturnsSum() {
        forEachFormat { fmt, t, _ in
            try t.map(iova: 0, paddr: 0x10_0000, size: 3 * K4, prot: .read)
            try t.map(iova: IOVA(rawValue: 3 * K4), paddr: 0x80_0000, size: 5 * K4, prot: .read)
            var g = IOTLBGather()
            XCTAssertEqual(t.unmap(iova: 0, size: 8 * K4, gather: &g), 8 * K4, "\(fmt)")
            XCTAssertEqual(t.iovaToPhys(IOVA(rawValue: 4 * K4)), 0, "\(fmt)")
            g.releaseFreelist(to: t.memory)
        }
    }

    func testUnmapMixedLeafSizes() {
        forEachFormat { fmt, t, _ in
            try t.map(iova: IOVA(rawValue: M2 - K4), paddr: PhysicalAddress(rawValue: M2 - K4), size: M2 + K4, prot: .read)
            var g = IOTLBGather()
            XCTAssertEqual(t.unmap(iova: IOVA(rawValue: M2 - K4), size: M2 + K4, gather: &g), M2 + K4, "\(fmt)")
            XCTAssertEqual(g.pgsize, K4, "\(fmt): smallest leaf gathered")
            g.releaseFreelist(to: t.memory)
        }
    }

    func testUnmapStopsAtHole() {
        forEachFormat { fmt, t, _ in
            try mapOne(t, 0, 0x10_0000, K4, count: 2)
            try mapOne(t, 3 * K4, 0x20_0000, K4)
            var g = IOTLBGather()
            XCTAssertEqual(t.unmap(iova: 0, size: 4 * K4, gather: &g), 2 * K4, "\(fmt)")
            XCTAssertEqual(t.iovaToPhys(IOVA(rawValue: 3 * K4)), 0x20_0000, "\(fmt): beyond the hole untouched")
            XCTAssertEqual(g.end.rawValue, 2 * K4 - 1, "\(fmt)")
        }
    }

    func testUnmapRangeEndingInsideBlockStopsBeforeIt() {
        forEachFormat { fmt, t, _ in
            try mapOne(t, M2 - K4, 0x10_0000, K4)
            try mapOne(t, M2, 0x40_0000, M2)
            var g = IOTLBGather()
            XCTAssertEqual(t.unmap(iova: IOVA(rawValue: M2 - K4), size: 2 * K4, gather: &g), K4, "\(fmt)")
            XCTAssertEqual(t.iovaToPhys(IOVA(rawValue: M2)), 0x40_0000, "\(fmt)")
            g.releaseFreelist(to: t.memory)
        }
    }

    func testEmptiedTablesGoToFreelistAndAreFreedOnlyOnRelease() {
        forEachFormat { fmt, t, memory in
            let before = memory.framesInUse
            try mapOne(t, G1 + M2, 0x10_0000, K4)
            XCTAssertEqual(memory.framesInUse, before + fmt.levels - 1, "\(fmt)")
            var g = IOTLBGather()
            XCTAssertEqual(t.unmap(iova: IOVA(rawValue: G1 + M2), size: K4, gather: &g), K4, "\(fmt)")
            XCTAssertEqual(g.freelist.count, fmt.levels - 1, "\(fmt): every table but the root")
            XCTAssertEqual(t.tablePages, 1, "\(fmt)")
            XCTAssertEqual(memory.framesInUse, before + fmt.levels - 1, "\(fmt): not freed before the sync")
            for pa in g.freelist { XCTAssertTrue(memory.isAllocated(pa), "\(fmt)") }
            XCTAssertEqual(memory.load64(t.root + ((G1 + M2) >> UInt64(3 + 9 * fmt.levels)) * 8), 0, "\(fmt): unlinked")
            g.releaseFreelist(to: memory)
            XCTAssertTrue(g.freelist.isEmpty)
            XCTAssertEqual(memory.framesInUse, before, "\(fmt)")
        }
    }

    func testTableStaysWhileItHasEntries() {
        forEachFormat { fmt, t, _ in
            try mapOne(t, 0, 0x10_0000, K4, count: 2)
            var g = IOTLBGather()
            XCTAssertEqual(t.unmapPages(iova: 0, pgsize: K4, pgcount: 1, gather: &g), K4, "\(fmt)")
            XCTAssertTrue(g.freelist.isEmpty, "\(fmt)")
            XCTAssertEqual(t.iovaToPhys(IOVA(rawValue: K4)), 0x10_1000, "\(fmt)")
            XCTAssertEqual(t.tablePages, fmt.levels, "\(fmt)")
        }
    }

    func testDirtyBitsReadAndClear() {
        forEachFormat { fmt, t, memory in
            try mapOne(t, 0, 0x10_0000, K4, count: 4)
            try mapOne(t, M2, 0x40_0000, M2)
            for va in [K4 * 2, M2 + 5 * K4] {
                let r = IOPageTable.walk(memory: memory, format: fmt, root: t.root, iova: IOVA(rawValue: va),
                                         access: [.write, .user], setAccessedDirty: true)
                guard case .translated = r else { return XCTFail("\(fmt): \(r)") }
            }
            _ = IOPageTable.walk(memory: memory, format: fmt, root: t.root, iova: 0, access: .read, setAccessedDirty: true)
            var seen: [(UInt64, UInt64)] = []
            t.readAndClearDirty(iova: 0, size: 2 * M2, clear: false) { seen.append(($0.rawValue, $1)) }
            XCTAssertEqual(seen.map(\.0), [2 * K4, M2], "\(fmt)")
            XCTAssertEqual(seen.map(\.1), [K4, M2], "\(fmt)")
            seen = []
            t.readAndClearDirty(iova: 0, size: 2 * M2, clear: true) { seen.append(($0.rawValue, $1)) }
            XCTAssertEqual(seen.count, 2, "\(fmt)")
            seen = []
            t.readAndClearDirty(iova: 0, size: 2 * M2, clear: false) { seen.append(($0.rawValue, $1)) }
            XCTAssertTrue(seen.isEmpty, "\(fmt): cleared")
            XCTAssertEqual(t.iovaToPhys(IOVA(rawValue: 2 * K4)), 0x10_2000, "\(fmt): mapping intact")
        }
    }

    /// Per-page maps and unmaps start at the level-1 table they used last; once that
    /// table is released, what replaces it (a block, a new table) must be found by a walk.
    func testLeafTableCacheForgetsReleasedTables() {
        forEachFormat { fmt, t, memory in
            try mapOne(t, M2, 0x10_0000, K4)
            var g = IOTLBGather()
            XCTAssertEqual(t.unmapPages(iova: IOVA(rawValue: M2), pgsize: K4, pgcount: 1, gather: &g), K4, "\(fmt)")
            XCTAssertEqual(g.freelist.count, fmt.levels - 1, "\(fmt)")
            g.releaseFreelist(to: memory)
            // A block where the leaf table was: 4 KiB maps are refused, 4 KiB unmaps split nothing.
            try mapOne(t, M2, 0x40_0000, M2)
            assertErrno(.exists, "\(fmt)") { () throws(Errno) in try mapOne(t, M2 + K4, 0x10_0000, K4) }
            XCTAssertEqual(t.unmapPages(iova: IOVA(rawValue: M2), pgsize: K4, pgcount: 1, gather: &g), 0, "\(fmt)")
            XCTAssertEqual(t.iovaToPhys(IOVA(rawValue: M2 + K4)), 0x40_1000, "\(fmt)")
            XCTAssertEqual(t.unmapPages(iova: IOVA(rawValue: M2), pgsize: M2, pgcount: 1, gather: &g), M2, "\(fmt)")
            g.releaseFreelist(to: memory)
            // A new leaf table in the same region, shared by consecutive one-page calls.
            try mapOne(t, M2, 0x10_0000, K4)
            try mapOne(t, M2 + K4, 0x20_0000, K4)
            XCTAssertEqual(t.tablePages, fmt.levels, "\(fmt)")
            XCTAssertEqual(t.iovaToPhys(IOVA(rawValue: M2 + K4)), 0x20_0000, "\(fmt)")
            XCTAssertEqual(t.unmapPages(iova: IOVA(rawValue: M2), pgsize: K4, pgcount: 1, gather: &g), K4, "\(fmt)")
            XCTAssertTrue(g.freelist.isEmpty, "\(fmt)")
            XCTAssertEqual(t.unmapPages(iova: IOVA(rawValue: M2 + K4), pgsize: K4, pgcount: 1, gather: &g), K4, "\(fmt)")
            XCTAssertEqual(g.freelist.count, fmt.levels - 1, "\(fmt)")
            XCTAssertEqual(t.tablePages, 1, "\(fmt)")
            g.releaseFreelist(to: memory)
        }
    }

    func testRandomSequenceMatchesOracle() {
        forEachFormat { fmt, t, memory in
            var rng = XorShift(state: 0xC0FF_EE12_3456_789B)
            var oracle: [UInt64: UInt64] = [:] // 4K page iova -> pa
            let window: UInt64 = 4 * M2 / K4
            for _ in 0..<3000 {
                let page = rng.below(window)
                let count = UInt64(1 + rng.below(8))
                let iova = page * K4
                if rng.below(2) == 0 {
                    let pa = 0x1000_0000 + rng.below(1 << 16) * K4
                    let free = (0..<count).allSatisfy { oracle[iova + $0 * K4] == nil }
                    var mapped: UInt64 = 0
                    do throws(Errno) {
                        try t.mapPages(iova: IOVA(rawValue: iova), paddr: PhysicalAddress(rawValue: pa), pgsize: K4, pgcount: Int(count), prot: .read, mapped: &mapped)
                        XCTAssertTrue(free, "\(fmt): map succeeded over an occupied page")
                    } catch {
                        XCTAssertEqual(error, .exists, "\(fmt)")
                        XCTAssertFalse(free, "\(fmt)")
                    }
                    for i in 0..<(mapped / K4) { oracle[iova + i * K4] = pa + i * K4 }
                } else {
                    var expected: UInt64 = 0
                    while expected < count * K4 && oracle[iova + expected] != nil { expected += K4 }
                    var g = IOTLBGather()
                    XCTAssertEqual(t.unmap(iova: IOVA(rawValue: iova), size: count * K4, gather: &g), expected, "\(fmt)")
                    for i in stride(from: 0, to: expected, by: Int(K4)) { oracle[iova + i] = nil }
                    g.releaseFreelist(to: memory)
                }
            }
            for page in 0..<window {
                XCTAssertEqual(t.iovaToPhys(IOVA(rawValue: page * K4)).rawValue, oracle[page * K4] ?? 0, "\(fmt) page \(page)")
            }
        }
    }

    func testDestroyIsIdempotentAndFreesEverything() {
        let memory = PhysicalMemory(size: 8 << 30)
        let baseline = memory.framesInUse
        for fmt in allFormats {
            let t = try! IOPageTable(format: fmt, memory: memory)
            try! t.map(iova: 0, paddr: 0, size: 64 << 20, prot: .read, pageSizes: K4)
            try! t.map(iova: IOVA(rawValue: G1), paddr: 0, size: G1 + M2, prot: .read)
            XCTAssertGreaterThan(memory.framesInUse, baseline + 32, "\(fmt)")
            t.destroy()
            t.destroy()
            XCTAssertEqual(memory.framesInUse, baseline, "\(fmt)")
            XCTAssertEqual(t.iovaToPhys(0), 0, "\(fmt)")
            assertErrno(.invalidArgument, "\(fmt)") { () throws(Errno) in try mapOne(t, 0, 0, K4) }
        }
        XCTAssertEqual(memory.framesInUse, baseline)
    }

    func testDeinitFreesTables() {
        let memory = PhysicalMemory(size: 8 << 30)
        let baseline = memory.framesInUse
        do {
            let t = try! IOPageTable(format: .x86_64(levels: 4), memory: memory)
            try! t.map(iova: 0, paddr: 0, size: 8 << 20, prot: .read, pageSizes: K4)
        }
        XCTAssertEqual(memory.framesInUse, baseline)
    }
}
