import IOMMUConformance
import XCTest
@testable import IOMMUCore

/// The io-pgtable suite, run over every format (kunit_iommu_pt style).
final class PageTableFormatTests: XCTestCase {
    /// Inside every aperture (the smallest is 39 bits), above the low 1 GiB.
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
            XCTAssertEqual(try mapOne(t, iova, 0x1234_5000, K4), K4, "\(fmt)")
            XCTAssertEqual(t.iovaToPhys(IOVA(rawValue: iova)), 0x1234_5000, "\(fmt)")
            XCTAssertEqual(t.iovaToPhys(IOVA(rawValue: iova + 0xABC)), 0x1234_5ABC, "\(fmt)")
            XCTAssertEqual(t.iovaToPhys(IOVA(rawValue: iova + K4)), 0, "\(fmt)")
            XCTAssertEqual(t.tablePages, fmt.levels, "\(fmt): root plus one table per lower level")
            XCTAssertEqual(t.tableBytes, fmt.levels * 4096, "\(fmt)")
        }
    }

    func testRawEntryBits() {
        forEachFormat { fmt, t, memory in
            try mapOne(t, 0, 0x7000, K4, prot: [.read])
            var table = t.root
            for level in stride(from: fmt.levels, to: 1, by: -1) {
                let pte = memory.load64(table)
                switch fmt.kind {
                case .x86_64FirstStage: XCTAssertEqual(pte & 0xFFF, 0x27, "\(fmt) level \(level): P|RW|US|A")
                case .vtdSecondStage: XCTAssertEqual(pte & 0xFFF, 0x3, "\(fmt) level \(level): R|W")
                }
                table = PhysicalAddress(rawValue: pte & 0x000F_FFFF_FFFF_F000)
            }
            let leaf = memory.load64(table)
            switch fmt.kind {
            case .x86_64FirstStage: XCTAssertEqual(leaf, 0x7000 | 0x5, "\(fmt): P|US, read-only, executable")
            case .vtdSecondStage: XCTAssertEqual(leaf, 0x7000 | 0x5, "\(fmt): R|X")
            }
        }
    }

    func testMapMultiplePagesCrossesTables() {
        forEachFormat { fmt, t, _ in
            let start = M2 - 4 * K4
            XCTAssertEqual(try mapOne(t, start, 0x100_0000, K4, count: 8), 8 * K4, "\(fmt)")
            for i in 0..<8 { XCTAssertEqual(t.iovaToPhys(IOVA(rawValue: start + UInt64(i) * K4)), 0x100_0000 + UInt64(i) * K4, "\(fmt)") }
            XCTAssertEqual(t.tablePages, fmt.levels + 1, "\(fmt): two leaf tables")
        }
    }

    func testPageSizeSelection2MiBAligned() {
        forEachFormat { fmt, t, _ in
            XCTAssertEqual(try t.map(iova: IOVA(rawValue: 2 * M2), paddr: PhysicalAddress(rawValue: 2 * M2), size: 4 << 20, prot: [.read, .write]), 4 << 20)
            XCTAssertEqual(leafSizes(t, 2 * M2, 4 << 20), [M2, M2], "\(fmt)")
        }
    }

    func testPageSizeSelectionPhysicalOffset() {
        forEachFormat { fmt, t, _ in
            try t.map(iova: IOVA(rawValue: 2 * M2), paddr: PhysicalAddress(rawValue: 2 * M2 + K4), size: 4 << 20, prot: [.read, .write])
            let sizes = leafSizes(t, 2 * M2, 4 << 20)
            XCTAssertEqual(sizes.count, 1024, "\(fmt)")
            XCTAssertTrue(sizes.allSatisfy { $0 == K4 }, "\(fmt)")
            XCTAssertEqual(t.iovaToPhys(IOVA(rawValue: 2 * M2 + (4 << 20) - 1)).rawValue, 2 * M2 + K4 + (4 << 20) - 1, "\(fmt)")
        }
    }

    func testPageSizeSelectionAcrossBoundary() {
        forEachFormat { fmt, t, _ in
            try t.map(iova: IOVA(rawValue: 3 * M2 - K4), paddr: PhysicalAddress(rawValue: 3 * M2 - K4), size: M2 + 2 * K4, prot: [.read])
            XCTAssertEqual(leafSizes(t, 3 * M2 - K4, M2 + 2 * K4), [K4, M2, K4], "\(fmt)")
        }
    }

    func testGigabyteLeaf() {
        forEachFormat { fmt, t, _ in
            try t.map(iova: IOVA(rawValue: G1), paddr: PhysicalAddress(rawValue: 2 * G1), size: G1, prot: [.read, .write])
            XCTAssertEqual(leafSizes(t, G1, G1), [G1], "\(fmt)")
            XCTAssertEqual(t.iovaToPhys(IOVA(rawValue: G1 + 0x123_4567)), PhysicalAddress(rawValue: 2 * G1 + 0x123_4567), "\(fmt)")
            XCTAssertEqual(t.tablePages, fmt.levels - 2, "\(fmt): the leaf sits in the level-3 table")
        }
    }

    func testMapOverExistingLeafIsEEXISTAndKeepsOriginal() {
        forEachFormat { fmt, t, _ in
            try mapOne(t, iova, 0xA000, K4)
            assertErrno(.exists, "\(fmt)") { () throws(Errno) in try mapOne(t, iova, 0xB000, K4) }
            XCTAssertEqual(t.iovaToPhys(IOVA(rawValue: iova)), 0xA000, "\(fmt)")
        }
    }

    func testMapBlockOverTableIsEEXIST() {
        forEachFormat { fmt, t, _ in
            try mapOne(t, M2 + K4, 0xA000, K4)
            assertErrno(.exists, "\(fmt)") { () throws(Errno) in try mapOne(t, M2, 0x20_0000, M2) }
            XCTAssertEqual(t.iovaToPhys(IOVA(rawValue: M2 + K4)), 0xA000, "\(fmt)")
            XCTAssertEqual(t.iovaToPhys(IOVA(rawValue: M2)), 0, "\(fmt)")
        }
    }

    func testMapPageInsideBlockIsEEXIST() {
        forEachFormat { fmt, t, _ in
            try mapOne(t, M2, 0x40_0000, M2)
            assertErrno(.exists, "\(fmt)") { () throws(Errno) in try mapOne(t, M2 + K4, 0xA000, K4) }
            XCTAssertEqual(t.iovaToPhys(IOVA(rawValue: M2 + K4)), 0x40_1000, "\(fmt)")
        }
    }

    func testPartialMapReportsMappedBytes() {
        forEachFormat { fmt, t, _ in
            try mapOne(t, 3 * K4, 0x9000, K4)
            var mapped: UInt64 = 0
            assertErrno(.exists, "\(fmt)") { () throws(Errno) in
                try t.mapPages(iova: 0, paddr: 0x10_0000, pgsize: K4, pgcount: 5, prot: .read, mapped: &mapped)
            }
            XCTAssertEqual(mapped, 3 * K4, "\(fmt): three pages before the occupied slot")
            XCTAssertEqual(t.iovaToPhys(IOVA(rawValue: 4 * K4)), 0, "\(fmt): nothing after the error")
        }
    }

    func testMapConvenienceIsAtomicOnError() {
        forEachFormat { fmt, t, _ in
            try mapOne(t, 8 * K4, 0x9000, K4)
            assertErrno(.exists, "\(fmt)") { () throws(Errno) in
                try t.map(iova: 0, paddr: 0x10_0000, size: 16 * K4, prot: .read)
            }
            for i in 0..<16 where i != 8 { XCTAssertEqual(t.iovaToPhys(IOVA(rawValue: UInt64(i) * K4)), 0, "\(fmt) page \(i)") }
            XCTAssertEqual(t.iovaToPhys(IOVA(rawValue: 8 * K4)), 0x9000, "\(fmt)")
        }
    }

    func testInvalidArguments() {
        forEachFormat { fmt, t, _ in
            assertErrno(.invalidArgument, "\(fmt) bad pgsize") { () throws(Errno) in try mapOne(t, 0, 0, 8192) }
            assertErrno(.invalidArgument, "\(fmt) iova") { () throws(Errno) in try mapOne(t, 0x800, 0, K4) }
            assertErrno(.invalidArgument, "\(fmt) paddr") { () throws(Errno) in try mapOne(t, M2, K4, M2) }
            assertErrno(.invalidArgument, "\(fmt) prot") { () throws(Errno) in
                try mapOne(t, 0, 0, K4, prot: [.cache, .noexec])
            }
            assertErrno(.invalidArgument, "\(fmt) count") { () throws(Errno) in try mapOne(t, 0, 0, K4, count: 0) }
            assertErrno(.invalidArgument, "\(fmt) size") { () throws(Errno) in
                try t.map(iova: 0, paddr: 0, size: 0x1800, prot: .read)
            }
            XCTAssertEqual(t.tablePages, 1, "\(fmt): no table allocated by a refused map")
        }
    }

    func testOutOfRangeIsERANGE() {
        forEachFormat { fmt, t, _ in
            let top = UInt64(1) << UInt64(fmt.vaBits)
            assertErrno(.outOfRange, "\(fmt)") { () throws(Errno) in try mapOne(t, top, 0, K4) }
            assertErrno(.outOfRange, "\(fmt)") { () throws(Errno) in try mapOne(t, top - K4, 0, K4, count: 2) }
            XCTAssertEqual(try mapOne(t, top - K4, 0x5000, K4), K4, "\(fmt): the last page is inside")
        }
    }

    func testAllocationFailureIsENOMEM() {
        forEachFormat { fmt, t, memory in
            memory.failAllocation = { _ in true }
            assertErrno(.noMemory, "\(fmt)") { () throws(Errno) in try mapOne(t, 0, 0x5000, K4) }
            memory.failAllocation = nil
            XCTAssertEqual(t.iovaToPhys(0), 0, "\(fmt)")
            XCTAssertEqual(try mapOne(t, 0, 0x5000, K4), K4, "\(fmt): works again after the failure")
        }
    }
}
