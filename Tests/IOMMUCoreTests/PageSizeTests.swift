import XCTest
@testable import IOMMUCore

/// `iommu_pgsize` selection: the largest page the alignment of IOVA and physical address
/// and the remaining size allow, and how many of it.
final class PageSizeTests: XCTestCase {
    let bitmap = K4 | M2 | G1

    func testAligned4MiBUsesTwo2MiBPages() {
        let r = iommuPageSize(iova: 0x4000_0000 + M2, paddr: 0x8000_0000 + M2, size: 4 << 20, pageSizes: bitmap)
        XCTAssertEqual(r.pgsize, M2)
        XCTAssertEqual(r.count, 2)
    }

    func testPhysicalOffsetForces4KiB() {
        let r = iommuPageSize(iova: IOVA(rawValue: M2), paddr: PhysicalAddress(rawValue: M2 + K4), size: 4 << 20, pageSizes: bitmap)
        XCTAssertEqual(r.pgsize, K4)
        XCTAssertEqual(r.count, 1024, "iova^paddr differ within 2 MiB, so the count runs over the whole size")
    }

    func testCountStopsAtNextLargerBoundary() {
        let r = iommuPageSize(iova: IOVA(rawValue: M2 - K4), paddr: PhysicalAddress(rawValue: M2 - K4), size: M2 + K4, pageSizes: bitmap)
        XCTAssertEqual(r.pgsize, K4)
        XCTAssertEqual(r.count, 1)
        let next = iommuPageSize(iova: IOVA(rawValue: M2), paddr: PhysicalAddress(rawValue: M2), size: M2, pageSizes: bitmap)
        XCTAssertEqual(next.pgsize, M2)
        XCTAssertEqual(next.count, 1)
    }

    func testCountCoversAllWhenLargerPageCannotFit() {
        // 12 KiB below a 2 MiB boundary but only 1 MiB long: no 2 MiB page fits.
        let r = iommuPageSize(iova: IOVA(rawValue: M2 - 3 * K4), paddr: PhysicalAddress(rawValue: M2 - 3 * K4), size: 1 << 20, pageSizes: bitmap)
        XCTAssertEqual(r.pgsize, K4)
        XCTAssertEqual(r.count, 256)
    }

    func testZeroAddressesAndGigabytePages() {
        let r = iommuPageSize(iova: 0, paddr: 0, size: 3 * G1, pageSizes: bitmap)
        XCTAssertEqual(r.pgsize, G1)
        XCTAssertEqual(r.count, 3)
    }

    func testTooSmallGivesZero() {
        let r = iommuPageSize(iova: 0, paddr: 0, size: 512, pageSizes: bitmap)
        XCTAssertEqual(r.pgsize, 0)
        XCTAssertEqual(r.count, 0)
    }
}
