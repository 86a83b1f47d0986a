import IOMMUConformance
import XCTest
@testable import IOMMUCore
@testable import Platform

/// The io-pgtable suite, run over every format (kunit_iommu_pt style). Sizes are the
/// format's own: `P` its page, `B` its first block, so one body serves 4K, 16K and 64K
/// granules.
final class PageTableFormatTests: XCTestCase {
    /// Inside every aperture (the smallest is 39 bits), above the low 1 GiB, aligned to
    /// every page size.
    let iova: UInt64 = 0x50_0000_0000

    func testFormatGeometry() {
        XCTAssertEqual(PageTableFormat.x86_64(levels: 4).vaBits, 48)
        XCTAssertEqual(PageTableFormat.x86_64(levels: 5).vaBits, 57)
        XCTAssertEqual(PageTableFormat.vtdSecondStage(levels: 3).vaBits, 39)
        XCTAssertEqual(PageTableFormat.vtdSecondStage(levels: 4).pageSizes, K4 | M2 | G1)
        XCTAssertNotEqual(PageTableFormat.x86_64(levels: 4), PageTableFormat.vtdSecondStage(levels: 4))
    }

    func testSimpleMapAndIovaToPhys() {
        forEachFormat { fmt, t, _ in
            let P = fmt.page, pa = 0x12345 * fmt.page
            XCTAssertEqual(try mapOne(t, iova, pa, P), P, "\(fmt)")
            XCTAssertEqual(phys(t, iova), pa, "\(fmt)")
            XCTAssertEqual(phys(t, iova + 0xABC), pa + 0xABC, "\(fmt)")
            XCTAssertEqual(phys(t, iova + P), 0, "\(fmt)")
            XCTAssertEqual(t.tablePages, fmt.levels, "\(fmt): root plus one table per lower level")
            XCTAssertEqual(t.tableBytes, fmt.rootTableBytes + (fmt.levels - 1) * fmt.tableBytes, "\(fmt)")
        }
    }

    func testRawEntryBits() {
        forEachFormat { fmt, t, memory in
            try mapOne(t, 0, 7 * fmt.page, fmt.page, prot: [.read])
            var table = t.root
            for level in stride(from: fmt.levels, to: 1, by: -1) {
                let pte = memory.load64(table)
                switch fmt.kind {
                case .x86_64FirstStage: XCTAssertEqual(pte & 0xFFF, 0x27, "\(fmt) level \(level): P|RW|US|A")
                case .vtdSecondStage: XCTAssertEqual(pte & 0xFFF, 0x3, "\(fmt) level \(level): R|W")
                case .armLPAEStage1, .armLPAEStage2:
                    XCTAssertEqual(pte & 0xFFF, 0x3, "\(fmt) level \(level): a table descriptor, nothing else")
                    XCTAssertEqual(pte >> 48, 0, "\(fmt) level \(level): no table attributes")
                }
                table = PhysicalAddress(rawValue: pte & 0x000F_FFFF_FFFF_F000)
            }
            let leaf = memory.load64(table)
            switch fmt.kind {
            case .x86_64FirstStage: XCTAssertEqual(leaf, 0x7000 | 0x5, "\(fmt): P|US, read-only, executable")
            case .vtdSecondStage: XCTAssertEqual(leaf, 0x7000 | 0x5, "\(fmt): R|X")
            case .armLPAEStage1:
                XCTAssertEqual(leaf, 7 * fmt.page | 0xEC3, "\(fmt): page|AP[1]|AP[2] read-only|SH outer|AF|nG")
            case .armLPAEStage2:
                XCTAssertEqual(leaf, 7 * fmt.page | 0x657, "\(fmt): page|MemAttr NC|S2AP read|SH outer|AF")
            }
        }
    }

    func testMapMultiplePagesCrossesTables() {
        forEachFormat { fmt, t, _ in
            let P = fmt.page, start = fmt.block - 4 * P
            XCTAssertEqual(try mapOne(t, start, 0x400 * P, P, count: 8), 8 * P, "\(fmt)")
            for i in 0..<UInt64(8) { XCTAssertEqual(phys(t, start + i * P), 0x400 * P + i * P, "\(fmt)") }
            XCTAssertEqual(t.tablePages, fmt.levels + 1, "\(fmt): two leaf tables")
        }
    }

    func testPageSizeSelectionBlockAligned() {
        forEachFormat { fmt, t, _ in
            let B = fmt.block
            XCTAssertEqual(try t.map(iova: IOVA(rawValue: 2 * B), paddr: PhysicalAddress(rawValue: 2 * B), size: 2 * B, prot: [.read, .write]), 2 * B)
            XCTAssertEqual(leafSizes(t, 2 * B, 2 * B), [B, B], "\(fmt)")
        }
    }

    func testPageSizeSelectionPhysicalOffset() {
        forEachFormat { fmt, t, _ in
            let P = fmt.page, B = fmt.block
            try t.map(iova: IOVA(rawValue: 2 * B), paddr: PhysicalAddress(rawValue: 2 * B + P), size: 2 * B, prot: [.read, .write])
            let sizes = leafSizes(t, 2 * B, 2 * B)
            XCTAssertEqual(sizes.count, Int(2 * B / P), "\(fmt)")
            XCTAssertTrue(sizes.allSatisfy { $0 == P }, "\(fmt)")
            XCTAssertEqual(phys(t, 2 * B + 2 * B - 1), 2 * B + P + 2 * B - 1, "\(fmt)")
        }
    }

    func testPageSizeSelectionAcrossBoundary() {
        forEachFormat { fmt, t, _ in
            let P = fmt.page, B = fmt.block
            try t.map(iova: IOVA(rawValue: 3 * B - P), paddr: PhysicalAddress(rawValue: 3 * B - P), size: B + 2 * P, prot: [.read])
            XCTAssertEqual(leafSizes(t, 3 * B - P, B + 2 * P), [P, B, P], "\(fmt)")
        }
    }

    /// The third leaf size (1 GiB with 4 KiB pages, 4 TiB with 64 KiB pages and a 52-bit
    /// output); 16 KiB granules have none.
    func testLargestLeaf() {
        forEachFormat { fmt, t, _ in
            guard let big = fmt.bigBlock else { return }
            try t.map(iova: IOVA(rawValue: big), paddr: PhysicalAddress(rawValue: 2 * big), size: big, prot: [.read, .write])
            XCTAssertEqual(leafSizes(t, big, big), [big], "\(fmt)")
            XCTAssertEqual(phys(t, big + 0x123_4567), 2 * big + 0x123_4567, "\(fmt)")
            XCTAssertEqual(t.tablePages, fmt.levels - 2, "\(fmt): the leaf sits in the level-3 table")
        }
    }

    func testMapOverExistingLeafIsEEXISTAndKeepsOriginal() {
        forEachFormat { fmt, t, _ in
            let P = fmt.page
            try mapOne(t, iova, 0xA * P, P)
            assertErrno(.exists, "\(fmt)") { () throws(Errno) in try mapOne(t, iova, 0xB * P, P) }
            XCTAssertEqual(phys(t, iova), 0xA * P, "\(fmt)")
        }
    }

    func testMapBlockOverTableIsEEXIST() {
        forEachFormat { fmt, t, _ in
            let P = fmt.page, B = fmt.block
            try mapOne(t, B + P, 0xA * P, P)
            assertErrno(.exists, "\(fmt)") { () throws(Errno) in try mapOne(t, B, B, B) }
            XCTAssertEqual(phys(t, B + P), 0xA * P, "\(fmt)")
            XCTAssertEqual(phys(t, B), 0, "\(fmt)")
        }
    }

    func testMapPageInsideBlockIsEEXIST() {
        forEachFormat { fmt, t, _ in
            let P = fmt.page, B = fmt.block
            try mapOne(t, B, 2 * B, B)
            assertErrno(.exists, "\(fmt)") { () throws(Errno) in try mapOne(t, B + P, 0xA * P, P) }
            XCTAssertEqual(phys(t, B + P), 2 * B + P, "\(fmt)")
        }
    }

    func testPartialMapReportsMappedBytes() {
        forEachFormat { fmt, t, _ in
            let P = fmt.page
            try mapOne(t, 3 * P, 9 * P, P)
            var mapped: UInt64 = 0
            assertErrno(.exists, "\(fmt)") { () throws(Errno) in
                try t.mapPages(iova: IOVA(rawValue: 0), paddr: PhysicalAddress(rawValue: 0x100 * P), pgsize: P, pgcount: 5, prot: .read, mapped: &mapped)
            }
            XCTAssertEqual(mapped, 3 * P, "\(fmt): three pages before the occupied slot")
            XCTAssertEqual(phys(t, 4 * P), 0, "\(fmt): nothing after the error")
        }
    }

    func testMapConvenienceIsAtomicOnError() {
        forEachFormat { fmt, t, _ in
            let P = fmt.page
            try mapOne(t, 8 * P, 9 * P, P)
            assertErrno(.exists, "\(fmt)") { () throws(Errno) in
                try t.map(iova: IOVA(rawValue: 0), paddr: PhysicalAddress(rawValue: 0x100 * P), size: 16 * P, prot: .read)
            }
            for i in 0..<UInt64(16) where i != 8 { XCTAssertEqual(phys(t, i * P), 0, "\(fmt) page \(i)") }
            XCTAssertEqual(phys(t, 8 * P), 9 * P, "\(fmt)")
        }
    }

    func testInvalidArguments() {
        forEachFormat { fmt, t, _ in
            let P = fmt.page, B = fmt.block
            assertErrno(.invalidArgument, "\(fmt) bad pgsize") { () throws(Errno) in try mapOne(t, 0, 0, 2 * P) }
            assertErrno(.invalidArgument, "\(fmt) iova") { () throws(Errno) in try mapOne(t, P / 2, 0, P) }
            assertErrno(.invalidArgument, "\(fmt) paddr") { () throws(Errno) in try mapOne(t, B, P, B) }
            assertErrno(.invalidArgument, "\(fmt) prot") { () throws(Errno) in
                try mapOne(t, 0, 0, P, prot: [.cache, .noexec])
            }
            assertErrno(.invalidArgument, "\(fmt) count") { () throws(Errno) in try mapOne(t, 0, 0, P, count: 0) }
            assertErrno(.invalidArgument, "\(fmt) size") { () throws(Errno) in
                try t.map(iova: IOVA(rawValue: 0), paddr: PhysicalAddress(rawValue: 0), size: P + P / 2, prot: .read)
            }
            XCTAssertEqual(t.tablePages, 1, "\(fmt): no table allocated by a refused map")
        }
    }

    func testOutOfRangeIsERANGE() {
        forEachFormat { fmt, t, _ in
            let P = fmt.page
            let top = UInt64(1) << UInt64(fmt.vaBits)
            assertErrno(.outOfRange, "\(fmt)") { () throws(Errno) in try mapOne(t, top, 0, P) }
            assertErrno(.outOfRange, "\(fmt)") { () throws(Errno) in try mapOne(t, top - P, 0, P, count: 2) }
            let outTop = UInt64(1) << UInt64(fmt.outputBits)
            assertErrno(.outOfRange, "\(fmt): output address") { () throws(Errno) in try mapOne(t, 0, outTop, P) }
            assertErrno(.outOfRange, "\(fmt): output range") { () throws(Errno) in
                try mapOne(t, 0, outTop - P, P, count: 2)
            }
            XCTAssertEqual(try mapOne(t, top - P, 5 * P, P), P, "\(fmt): the last page is inside")
            XCTAssertEqual(try mapOne(t, 0, outTop - P, P), P, "\(fmt): the last output page is inside")
        }
    }

    func testAllocationFailureIsENOMEM() {
        forEachFormat { fmt, t, memory in
            let P = fmt.page
            memory.failAllocation = { _ in true }
            assertErrno(.noMemory, "\(fmt)") { () throws(Errno) in try mapOne(t, 0, 5 * P, P) }
            memory.failAllocation = nil
            XCTAssertEqual(phys(t, 0), 0, "\(fmt)")
            XCTAssertEqual(try mapOne(t, 0, 5 * P, P), P, "\(fmt): works again after the failure")
        }
    }
}
