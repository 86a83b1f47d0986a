import XCTest
@testable import IOMMUCore

final class IOTLBTests: XCTestCase {
    func testMissThenHit() {
        let tlb = IOTLB(entries: 64)
        XCTAssertNil(tlb.lookup(tag: 1, iova: 0x5000))
        tlb.insert(tag: 1, iova: 0x5000, pageSize: K4, pa: 0x9_9000, perms: [.read])
        let e = tlb.lookup(tag: 1, iova: 0x5123)
        XCTAssertEqual(e, IOTLBEntry(pageBase: 0x9_9000, pageSize: K4, perms: [.read]))
        XCTAssertEqual(e?.translate(0x5123), 0x9_9123)
        XCTAssertNil(tlb.lookup(tag: 2, iova: 0x5000), "another tag misses")
        XCTAssertEqual(tlb.hits, 1)
        XCTAssertEqual(tlb.misses, 2)
        XCTAssertEqual(tlb.count, 1)
    }

    func testHugeEntriesFoundAnywhereInside() {
        let tlb = IOTLB()
        tlb.insert(tag: 3, iova: IOVA(rawValue: M2 + 0x1000), pageSize: M2, pa: 0x80_0000, perms: [.read, .write])
        tlb.insert(tag: 3, iova: IOVA(rawValue: 5 * G1), pageSize: G1, pa: PhysicalAddress(rawValue: 2 * G1), perms: [.read])
        let end2M = IOVA(rawValue: 2 * M2 - 1)
        XCTAssertEqual(tlb.lookup(tag: 3, iova: end2M)?.translate(end2M), PhysicalAddress(rawValue: 0x80_0000 + M2 - 1))
        XCTAssertEqual(tlb.lookup(tag: 3, iova: IOVA(rawValue: M2))?.pageSize, M2)
        let inside1G = IOVA(rawValue: 5 * G1 + 0x1234_5678)
        XCTAssertEqual(tlb.lookup(tag: 3, iova: inside1G)?.translate(inside1G), PhysicalAddress(rawValue: 2 * G1 + 0x1234_5678))
        XCTAssertNil(tlb.lookup(tag: 3, iova: IOVA(rawValue: 2 * M2)))
        XCTAssertEqual(tlb.count, 2)
    }

    func testRangeInvalidation() {
        let tlb = IOTLB()
        for i in 0..<8 { tlb.insert(tag: 1, iova: IOVA(rawValue: UInt64(i) * K4), pageSize: K4, pa: PhysicalAddress(rawValue: UInt64(i) * K4), perms: .read) }
        tlb.insert(tag: 2, iova: IOVA(rawValue: 2 * K4), pageSize: K4, pa: 0, perms: .read)
        tlb.invalidate(tag: 1, iova: IOVA(rawValue: 2 * K4), size: 3 * K4)
        XCTAssertEqual(tlb.count, 6)
        XCTAssertNotNil(tlb.lookup(tag: 1, iova: IOVA(rawValue: K4)))
        XCTAssertNil(tlb.lookup(tag: 1, iova: IOVA(rawValue: 2 * K4)))
        XCTAssertNil(tlb.lookup(tag: 1, iova: IOVA(rawValue: 4 * K4)))
        XCTAssertNotNil(tlb.lookup(tag: 1, iova: IOVA(rawValue: 5 * K4)))
        XCTAssertNotNil(tlb.lookup(tag: 2, iova: IOVA(rawValue: 2 * K4)), "other tags untouched")
    }

    func testSubPageInvalidationDropsHugeEntry() {
        let tlb = IOTLB()
        tlb.insert(tag: 1, iova: IOVA(rawValue: M2), pageSize: M2, pa: 0x40_0000, perms: .read)
        tlb.invalidate(tag: 1, iova: IOVA(rawValue: M2 + 0x10_0000), size: K4)
        XCTAssertNil(tlb.lookup(tag: 1, iova: IOVA(rawValue: M2)))
        XCTAssertEqual(tlb.count, 0)
    }

    func testLargeRangeInvalidationScans() {
        let tlb = IOTLB(entries: 64)
        for i in 0..<32 { tlb.insert(tag: 7, iova: IOVA(rawValue: UInt64(i) * K4), pageSize: K4, pa: 0, perms: .read) }
        tlb.insert(tag: 7, iova: IOVA(rawValue: G1), pageSize: K4, pa: 0, perms: .read)
        tlb.invalidate(tag: 7, iova: 0, size: 1 << 40)
        XCTAssertEqual(tlb.count, 0)
    }

    func testTagAndGlobalInvalidation() {
        let tlb = IOTLB()
        tlb.insert(tag: 1, iova: 0, pageSize: K4, pa: 0, perms: .read)
        tlb.insert(tag: 1, iova: IOVA(rawValue: M2), pageSize: M2, pa: 0, perms: .read)
        tlb.insert(tag: 2, iova: 0, pageSize: K4, pa: 0, perms: .read)
        tlb.invalidate(tag: 1)
        XCTAssertEqual(tlb.count, 1)
        XCTAssertNotNil(tlb.lookup(tag: 2, iova: 0))
        tlb.insert(tag: 9, iova: IOVA(rawValue: G1), pageSize: G1, pa: 0, perms: .read)
        tlb.invalidate { tag, _, size in tag == 9 && size == G1 }
        XCTAssertEqual(tlb.count, 1)
        tlb.invalidateAll()
        XCTAssertEqual(tlb.count, 0)
        XCTAssertNil(tlb.lookup(tag: 2, iova: 0))
    }

    func testConflictEvictsAndCountStaysExact() {
        let tlb = IOTLB(entries: 16)
        for i in 0..<64 { tlb.insert(tag: 1, iova: IOVA(rawValue: UInt64(i) * K4), pageSize: K4, pa: PhysicalAddress(rawValue: UInt64(i) * K4), perms: .read) }
        XCTAssertEqual(tlb.count, 16, "direct-mapped: one entry per slot")
        XCTAssertEqual(tlb.lookup(tag: 1, iova: IOVA(rawValue: 63 * K4))?.pageBase, PhysicalAddress(rawValue: 63 * K4))
    }
}
