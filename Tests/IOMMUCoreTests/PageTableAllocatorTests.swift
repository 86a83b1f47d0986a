import IOMMUConformance
import XCTest
@testable import IOMMUCore
@testable import Platform

/// A custom table-page allocator (`io_pgtable_cfg.alloc`), over every format: the pages
/// below the root come from it, a map it cannot serve fails with `ENOMEM` and maps
/// nothing, and every page goes back to the machine's memory when freed.
final class PageTableAllocatorTests: XCTestCase {
    /// Hands out pages taken from memory ahead of time, as a driver that preallocates
    /// before a bind does; records the sizes asked for.
    final class Preallocated: PageTableAllocator, @unchecked Sendable {
        var pages: [PhysicalAddress]
        var requests: [Int] = []
        init(memory: PhysicalMemory, count: Int, bytes: Int) throws {
            pages = try (0..<count).map { _ in
                bytes == PhysicalMemory.frameSize
                    ? try memory.allocFrame() : try memory.allocContiguous(bytes: bytes, alignment: bytes)
            }
        }
        func allocTable(bytes: Int) throws(Errno) -> PhysicalAddress {
            requests.append(bytes)
            guard !pages.isEmpty else { throw .noMemory }
            return pages.removeFirst()
        }
    }

    func testTablePagesBelowTheRootComeFromTheAllocator() throws {
        for format in allFormats {
            let memory = PhysicalMemory(size: 8 << 30)
            let baseline = memory.framesInUse
            let alloc = try Preallocated(memory: memory, count: format.levels - 1, bytes: format.tableBytes)
            let prepared = alloc.pages
            let table = try IOPageTable(format: format, memory: memory, allocator: alloc)
            let P = format.page
            let inUse = memory.framesInUse
            XCTAssertEqual(try mapOne(table, 3 * P, 7 * P, P), P, "\(format)")
            XCTAssertEqual(memory.framesInUse, inUse, "\(format): the map took nothing from memory")
            XCTAssertEqual(alloc.requests, Array(repeating: format.tableBytes, count: format.levels - 1), "\(format)")
            XCTAssertTrue(alloc.pages.isEmpty, "\(format): every preallocated page was used")
            XCTAssertEqual(table.tablePages, format.levels, "\(format)")
            XCTAssertEqual(phys(table, 3 * P + 8), 7 * P + 8, "\(format)")
            // The hardware walks the allocator's pages: the leaf table is the last one handed out.
            if case .translated(let pa, _, _) = IOPageTable.walk(memory: memory, format: format, root: table.root,
                                                                 iova: IOVA(rawValue: 3 * P + format.inputBase),
                                                                 access: .read, setAccessedDirty: true) {
                XCTAssertEqual(pa.rawValue, 7 * P, "\(format)")
            } else {
                XCTFail("\(format): the walk did not translate")
            }
            XCTAssertTrue(prepared.allSatisfy { memory.isAllocated($0) }, "\(format)")
            table.destroy()
            XCTAssertEqual(memory.framesInUse, baseline, "\(format): the allocator's pages went back to memory")
        }
    }

    func testAllocatorOutOfPagesIsENOMEMAndMapsNothing() throws {
        for format in allFormats {
            let memory = PhysicalMemory(size: 8 << 30)
            let baseline = memory.framesInUse
            // One page short of what a first map needs.
            let alloc = try Preallocated(memory: memory, count: format.levels - 2, bytes: format.tableBytes)
            let table = try IOPageTable(format: format, memory: memory, allocator: alloc)
            let P = format.page
            let inUse = memory.framesInUse
            assertErrno(.noMemory, "\(format)") { () throws(Errno) in try mapOne(table, 0, 5 * P, P) }
            XCTAssertEqual(phys(table, 0), 0, "\(format): nothing mapped")
            XCTAssertEqual(memory.framesInUse, inUse, "\(format): the table did not fall back to memory")
            XCTAssertEqual(alloc.requests.count, format.levels - 1, "\(format)")
            table.destroy()
            XCTAssertEqual(memory.framesInUse, baseline, "\(format): no page leaked")
        }
    }

    func testWithoutAllocatorTablesComeFromMemory() throws {
        let memory = PhysicalMemory(size: 1 << 30)
        let table = try IOPageTable(format: .x86_64(levels: 4), memory: memory)
        let before = memory.framesInUse
        XCTAssertEqual(try mapOne(table, 0, 5 * K4, K4), K4)
        XCTAssertEqual(memory.framesInUse, before + 3)
    }
}
