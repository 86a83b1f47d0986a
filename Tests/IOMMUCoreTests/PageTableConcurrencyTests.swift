import Foundation
import XCTest
@testable import Platform
@testable import IOMMUCore

/// The page-table engine under the kernel's concurrency contract: disjoint maps and
/// unmaps from many threads at once, with the races where io-pgtable needs its
/// compare-and-swap (linking a new table level) and the caller bug it must survive
/// (overlapping unmaps freeing one table). CI runs these under ThreadSanitizer.
final class PageTableConcurrencyTests: XCTestCase {
    /// Runs `body(thread)` on `count` threads started together; returns when all ended.
    private func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
        let start = DispatchSemaphore(value: 0)
        let done = DispatchGroup()
        for t in 0..<count {
            done.enter()
            Thread {
                start.wait()
                body(t)
                done.leave()
            }.start()
        }
        for _ in 0..<count { start.signal() }
        done.wait()
    }

    /// Eight threads map their own leaf-table-sized windows of fresh regions, so they
    /// race to link the same new upper tables: every map succeeds, the losers' table
    /// pages go back (the pages in use are exactly the tables a one-thread run links),
    /// and every page translates to what its thread mapped. Then each thread unmaps its
    /// windows whole, which frees its leaf tables through its gather. Every format.
    func testDisjointMapsRaceToLinkTablesAndLoseNoPage() throws {
        for format in allFormats {
            let P = format.page, B = format.block, region = B << UInt64(format.bitsPerLevel)
            let memory = PhysicalMemory(size: 4 << 30)
            let baseline = memory.framesInUse
            let threads = 8, regions = 4
            @Sendable func window(_ t: Int, _ r: Int) -> UInt64 { UInt64(r + 1) * region + UInt64(t) * B }
            @Sendable func target(_ t: Int) -> UInt64 { 0x4000_0000 + UInt64(t) * B + P }
            let reference = try IOPageTable(format: format, memory: memory)
            for t in 0..<threads {
                for r in 0..<regions {
                    var mapped: UInt64 = 0
                    try reference.mapPages(iova: IOVA(rawValue: window(t, r)), paddr: PhysicalAddress(rawValue: target(t)),
                                           pgsize: P, pgcount: Int(B / P), prot: [.read], mapped: &mapped)
                }
            }
            let tables = reference.tablePages
            reference.destroy()
            let table = try IOPageTable(format: format, memory: memory)
            let failures = LockedCounter()
            onThreads(threads) { t in
                for r in 0..<regions {
                    var mapped: UInt64 = 0
                    do {
                        try table.mapPages(iova: IOVA(rawValue: window(t, r)), paddr: PhysicalAddress(rawValue: target(t)),
                                           pgsize: P, pgcount: Int(B / P), prot: [.read], mapped: &mapped)
                    } catch { failures.add() }
                }
            }
            XCTAssertEqual(failures.value, 0, "\(format)")
            XCTAssertEqual(table.tablePages, tables, "\(format)")
            XCTAssertEqual(memory.framesInUse, baseline + table.tableBytes / PhysicalMemory.frameSize,
                           "\(format): every loser's page was freed")
            for t in 0..<threads {
                for r in 0..<regions {
                    XCTAssertEqual(table.iovaToPhys(IOVA(rawValue: window(t, r) + 5 * P)).rawValue, target(t) + 5 * P,
                                   "\(format)")
                }
            }
            let freed = LockedCounter()
            onThreads(threads) { t in
                var gather = IOTLBGather()
                for r in 0..<regions {
                    _ = table.unmap(iova: IOVA(rawValue: window(t, r)), size: B, gather: &gather)
                }
                freed.add(gather.freelist.count)
                gather.releaseFreelist(to: memory)
            }
            XCTAssertEqual(freed.value, threads * regions, "\(format): each window's leaf table, once")
            XCTAssertEqual(table.tablePages, tables - threads * regions, "\(format)")
            table.destroy()
            XCTAssertEqual(memory.framesInUse, baseline, "\(format)")
        }
    }

    /// Overlapping unmaps are a caller bug, but they must not corrupt the frame
    /// allocator: four threads unmapping the same full leaf table at once unlink and
    /// free it exactly once between them, and nothing is left allocated. Every format.
    func testOverlappingUnmapsFreeTheCoveredTableOnce() throws {
        for format in allFormats {
            let P = format.page, B = format.block
            let memory = PhysicalMemory(size: 1 << 30)
            let baseline = memory.framesInUse
            let table = try IOPageTable(format: format, memory: memory)
            for _ in 0..<20 {
                var mapped: UInt64 = 0
                try table.mapPages(iova: IOVA(rawValue: B), paddr: PhysicalAddress(rawValue: B + P), pgsize: P,
                                   pgcount: Int(B / P), prot: [.read], mapped: &mapped)
                let freed = LockedCounter()
                onThreads(4) { _ in
                    var gather = IOTLBGather()
                    _ = table.unmap(iova: IOVA(rawValue: B), size: B, gather: &gather)
                    freed.add(gather.freelist.count)
                    gather.releaseFreelist(to: memory)
                }
                XCTAssertEqual(freed.value, 1, "\(format)")
                XCTAssertEqual(table.iovaToPhys(IOVA(rawValue: B + P)), 0, "\(format)")
            }
            table.destroy()
            XCTAssertEqual(memory.framesInUse, baseline, "\(format)")
        }
    }
}

/// A counter threads add to.
private final class LockedCounter: @unchecked Sendable {
    private let lock = Lock()
    private var count = 0
    func add(_ n: Int = 1) { lock.withLock { count += n } }
    var value: Int { lock.withLock { count } }
}
